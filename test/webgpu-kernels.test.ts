// The course's fused WebGPU kernels (lib/engine/webgpu/kernels/) against the plain TF.js ops they replace,
// on random inputs of awkward shapes: layer norm forward and backward (TF.js autodiff of lib/model/layernorm.ts),
// the causal attention softmax with a cache offset and left padding, cross-entropy with its gradient, the
// embeddings and their gradients, row gathers, bias gradients and AdamW (lib/train/adamw.ts).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { layerNormBackward, layerNormForward, layerNormParamGrad } from "../lib/engine/webgpu/kernels/layernorm";
import { attentionSoftmax, attentionSoftmaxBackward } from "../lib/engine/webgpu/kernels/attention-softmax";
import { crossEntropyRows, lossMean } from "../lib/engine/webgpu/kernels/cross-entropy";
import { embeddingForward, positionEmbeddingGrad, tokenEmbeddingGrad } from "../lib/engine/webgpu/kernels/embedding";
import { gatherRows } from "../lib/engine/webgpu/kernels/rows";
import { biasGrad } from "../lib/engine/webgpu/kernels/bias-grad";
import { adamwArena } from "../lib/engine/webgpu/kernels/adamw";
import { LayerNorm, LAYERNORM_EPS } from "../lib/model/layernorm";
import { PAD_BIAS } from "../lib/model/kv-cache";
import { AdamW } from "../lib/train/adamw";
import { Rng } from "../lib/core/random";
import { record } from "../lib/engine/webgpu/recorder";
import { gpuTest, maxRelDiff, randomArray, upload } from "./helpers/gpu-kernels";

const TOL = 2e-5;
const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string, tol = TOL) => {
  const d = maxRelDiff(got, want);
  assert.ok(d < tol, `${what} differs by ${d}`);
};

gpuTest("layer norm forward, backward (accumulated) and parameter gradients equal TF.js autodiff of LayerNorm", async (rt) => {
  const [rows, C] = [37, 300];
  const x = randomArray(rows * C, 11, -2, 3);
  const dy = randomArray(rows * C, 12);
  const prior = randomArray(rows * C, 13);
  const scale = randomArray(C, 14, 0.5, 1.5);
  const shift = randomArray(C, 15);
  const ln = new LayerNorm({ params: new Map(), rng: new Rng(1), init: "zeros" }, "ln", C);
  ln.scale.assign(tf.tensor1d(scale));
  ln.shift.assign(tf.tensor1d(shift));
  const xt = tf.tensor2d(x, [rows, C]);
  const y = ln.apply(xt);
  const g = tf.grads((a: tf.Tensor, s: tf.Tensor, b: tf.Tensor) => {
    const mean = tf.mean(a, -1, true);
    const centered = tf.sub(a, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    return tf.add(tf.mul(tf.div(centered, tf.sqrt(tf.add(variance, LAYERNORM_EPS))), s), b);
  })([xt, ln.scale, ln.shift], tf.tensor2d(dy, [rows, C]));
  const params = upload(rt, Float32Array.from([0, ...scale, ...shift])); // scale at 1, shift at 1 + C
  const [X, DY, DX] = [upload(rt, x), upload(rt, dy), upload(rt, prior)];
  const [Y, S, G] = [rt.buffer(rows * C * 4, "y"), rt.buffer(rows * 2 * 4 + 8, "stats"), rt.buffer((2 * C + 3) * 4, "g")];
  const rec = record(rt);
  layerNormForward(rt, rec, { rows, C }, { buf: X, offset: 0 }, { buf: Y, offset: 0 }, params, 1, 1 + C, { buf: S, offset: 2 }, LAYERNORM_EPS);
  layerNormBackward(rt, rec, { rows, C }, { buf: DY, offset: 0 }, { buf: X, offset: 0 }, params, 1, { buf: S, offset: 2 }, { buf: DX, offset: 0 }, true);
  layerNormParamGrad(rt, rec, { rows, C }, { buf: DY, offset: 0 }, { buf: X, offset: 0 }, { buf: S, offset: 2 }, G, 3, 3 + C);
  await rec.submit();
  close(await rt.readF32(Y, 0, rows * C), await y.data(), "y");
  const wantDx = (await g[0].data()).map((v, i) => v + prior[i]);
  close(await rt.readF32(DX, 0, rows * C), wantDx, "dx + prior");
  close(await rt.readF32(G, 3, C), await g[1].data(), "dscale");
  close(await rt.readF32(G, 3 + C, C), await g[2].data(), "dshift");
  [params, X, DY, DX, Y, S, G].forEach((b) => rt.destroy(b));
  tf.dispose([xt, y, ...g, ln.scale, ln.shift]);
});

gpuTest("attention softmax with a cache offset and left padding equals the plain path's masked softmax, and its backward TF.js's", async (rt) => {
  const [B, H, Tq, past] = [2, 3, 5, 4];
  const Tk = past + Tq;
  const pads = [0, 6]; // row 1's first 6 keys are padding: some queries see nothing else
  const scores = randomArray(B * H * Tq * Tk, 21, -4, 4);
  const dw = randomArray(B * H * Tq * Tk, 22);
  const scale = 0.3;
  // the plain path: -inf for later keys, PAD_BIAS for padding keys, softmax
  const bias = new Float32Array(B * H * Tq * Tk);
  for (let b = 0; b < B; b++) for (let h = 0; h < H; h++) for (let i = 0; i < Tq; i++) for (let j = 0; j < Tk; j++) {
    const at = ((b * H + h) * Tq + i) * Tk + j;
    bias[at] = j > past + i ? -Infinity : j < pads[b] ? PAD_BIAS : 0;
  }
  const s = tf.tensor1d(scores);
  const w = tf.softmax(tf.add(s, tf.tensor1d(bias)).reshape([-1, Tk]));
  const ds = tf.tidy(() => {
    const f = (x: tf.Tensor) => tf.softmax(tf.add(x, tf.tensor1d(bias)).reshape([-1, Tk]));
    return tf.mul(tf.grad(f)(s, tf.tensor2d(dw, [B * H * Tq, Tk])), scale);
  });
  const S = upload(rt, Float32Array.from([9, ...scores]));
  const D = upload(rt, dw);
  const meta = upload(rt, Uint32Array.from([7, 7, ...pads]));
  const rec = record(rt);
  const shape = { Z: B * H, Tq, Tk, past };
  attentionSoftmax(rt, rec, shape, { buf: S, offset: 1 }, { buf: meta, offset: 2 }, { heads: H, bias: PAD_BIAS });
  attentionSoftmaxBackward(rt, rec, shape, { buf: S, offset: 1 }, { buf: D, offset: 0 }, scale);
  await rec.submit();
  close(await rt.readF32(S, 1, scores.length), await w.data(), "weights");
  close(await rt.readF32(D, 0, dw.length), await ds.data(), "dscores");
  [S, D, meta].forEach((b) => rt.destroy(b));
  tf.dispose([s, w, ds]);
});

gpuTest("cross-entropy rows and their mean equal TF.js's, and the gradient is (softmax - onehot) · scale", async (rt) => {
  const [rows, V] = [9, 1031];
  const logits = randomArray(rows * V, 31, -6, 6);
  const targets = Uint32Array.from({ length: rows }, (_, r) => (r * 397 + 5) % V);
  const lt = tf.tensor2d(logits, [rows, V]);
  const oneHot = tf.oneHot(tf.tensor1d(Array.from(targets), "int32"), V).cast("float32");
  const perRow = tf.sub(tf.logSumExp(lt, 1), tf.sum(tf.mul(lt, oneHot), 1));
  const grad = tf.mul(tf.sub(tf.softmax(lt), oneHot), 1 / rows);
  const L = upload(rt, logits);
  const meta = upload(rt, Uint32Array.from([0, ...targets]));
  const [out, mean] = [rt.buffer(rows * 4, "losses"), rt.buffer(8, "mean")];
  const rec = record(rt);
  crossEntropyRows(rt, rec, rows, V, { buf: L, offset: 0 }, { buf: meta, offset: 1 }, { buf: out, offset: 0 }, 1 / rows);
  lossMean(rt, rec, rows, { buf: out, offset: 0 }, { buf: mean, offset: 1 }, 1 / rows);
  await rec.submit();
  close(await rt.readF32(out, 0, rows), await perRow.data(), "per-row losses");
  close(await rt.readF32(mean, 1, 1), [(await tf.mean(perRow).data())[0]], "mean loss");
  close(await rt.readF32(L, 0, rows * V), await grad.data(), "gradient");
  [L, meta, out, mean].forEach((b) => rt.destroy(b));
  tf.dispose([lt, oneHot, perRow, grad]);
});

gpuTest("embeddings from a table split in two blocks, and their gradients, equal TF.js's gather and its gradient", async (rt) => {
  const [B, T, C, V] = [2, 5, 6, 13];
  const ids = [3, 12, 3, 0, 7, 12, 12, 1, 6, 3];
  const wte = randomArray(V * C, 41);
  const wpe = randomArray(8 * C, 42);
  const dOut = randomArray(B * T * C, 43);
  const idsT = tf.tensor1d(ids, "int32");
  const pos = tf.tensor1d(ids.map((_, n) => n % T), "int32");
  const f = (e: tf.Tensor, p: tf.Tensor) => tf.add(tf.gather(e, idsT), tf.gather(p, pos));
  const want = f(tf.tensor2d(wte, [V, C]), tf.tensor2d(wpe, [8, C]));
  const [gWte, gWpe] = tf.grads(f)([tf.tensor2d(wte, [V, C]), tf.tensor2d(wpe, [8, C])], tf.tensor2d(dOut, [B * T, C]));
  // the host's token lists: distinct tokens of each block, with their rows
  const split = 8; // block 0: tokens 0..7, block 1: 8..12
  const distinct = [...new Set(ids)].sort((a, b) => a - b);
  const rows: number[] = [];
  const list: number[] = [];
  for (const tok of distinct) {
    const first = rows.length;
    ids.forEach((id, n) => id === tok && rows.push(n));
    list.push(tok, first, rows.length);
  }
  const inBlock0 = distinct.filter((t) => t < split).length;
  const meta = upload(rt, Uint32Array.from([...ids, ...ids.map((_, n) => n % T), ...list, ...rows]));
  const [posOff, listOff, rowsOff] = [ids.length, 2 * ids.length, 2 * ids.length + list.length];
  const params = upload(rt, Float32Array.from([...wte.slice(0, split * C), 0, 0, 0, 0, ...wte.slice(split * C), ...wpe]));
  const block1 = split * C + 4;
  const wpeOff = block1 + (V - split) * C;
  const grads = rt.buffer(params.bytes, "grads");
  const [out, D] = [rt.buffer(B * T * C * 4, "out"), upload(rt, dOut)];
  const blocks = [{ table: { buf: params, offset: 0 }, start: 0, count: split }, { table: { buf: params, offset: block1 }, start: split, count: V - split }];
  const gradBlocks = blocks.map((b) => ({ ...b, table: { buf: grads, offset: b.table.offset } }));
  const rec = record(rt);
  embeddingForward(rt, rec, B * T, C, meta, 0, posOff, blocks, { buf: params, offset: wpeOff }, { buf: out, offset: 0 });
  rec.clear(grads);
  tokenEmbeddingGrad(rt, rec, C, meta, listOff, inBlock0, rowsOff, { buf: D, offset: 0 }, gradBlocks[0]);
  tokenEmbeddingGrad(rt, rec, C, meta, listOff + 3 * inBlock0, distinct.length - inBlock0, rowsOff, { buf: D, offset: 0 }, gradBlocks[1]);
  positionEmbeddingGrad(rt, rec, B, T, C, { buf: D, offset: 0 }, { buf: grads, offset: wpeOff });
  await rec.submit();
  close(await rt.readF32(out, 0, B * T * C), await want.data(), "embeddings");
  const g = await rt.readF32(grads, 0, params.bytes / 4);
  close([...g.slice(0, split * C), ...g.slice(block1, block1 + (V - split) * C)], await gWte.data(), "dwte");
  close(g.slice(wpeOff, wpeOff + 8 * C), await gWpe.data(), "dwpe");
  [meta, params, grads, out, D].forEach((b) => rt.destroy(b));
  tf.dispose([idsT, pos, want, gWte, gWpe]);
});

gpuTest("row gathers and bias gradients equal tf.gather and tf.sum", async (rt) => {
  const [rows, C] = [11, 70];
  const x = randomArray(rows * C, 51);
  const idx = [4, -1, 0, 10, 10, -1];
  const want = idx.flatMap((i) => (i < 0 ? new Array<number>(C).fill(0) : Array.from(x.slice(i * C, (i + 1) * C))));
  const [X, meta] = [upload(rt, x), upload(rt, Int32Array.from([5, ...idx]))];
  const [out, g] = [rt.buffer(idx.length * C * 4, "out"), rt.buffer((C + 1) * 4, "g")];
  const rec = record(rt);
  gatherRows(rt, rec, idx.length, C, { buf: X, offset: 0 }, { buf: meta, offset: 1 }, { buf: out, offset: 0 });
  biasGrad(rt, rec, rows, C, { buf: X, offset: 0 }, { buf: g, offset: 1 });
  await rec.submit();
  close(await rt.readF32(out, 0, idx.length * C), want, "gathered rows");
  close(await rt.readF32(g, 1, C), await tf.sum(tf.tensor2d(x, [rows, C]), 0).data(), "column sums");
  [X, meta, out, g].forEach((b) => rt.destroy(b));
});

for (const n of [4096, 1001]) {
  gpuTest(`AdamW over an arena of ${n} values (${n % 4 ? "scalar" : "vec4"}) equals lib/train/adamw.ts for 3 steps; a NaN loss changes nothing`, async (rt) => {
    const p0 = randomArray(n, 61);
    const grads = [62, 63, 64].map((s) => randomArray(n, s, -0.01, 0.01));
    const variable = tf.variable(tf.tensor1d(p0));
    const opt = new AdamW(new Map([["p", variable]]), { lr: 1e-3, weightDecay: 0.1 });
    const [P, G, M, Vb] = [upload(rt, p0), rt.buffer(n * 4, "g"), rt.buffer(n * 4, "m"), rt.buffer(n * 4, "v")];
    const loss = upload(rt, Float32Array.from([1.5, NaN]));
    for (let t = 1; t <= 3; t++) {
      const gt = tf.tensor1d(grads[t - 1]);
      opt.step(new Map([["p", gt]]));
      gt.dispose();
      rt.write(G, 0, grads[t - 1]);
      const rec = record(rt);
      const s = { decay: 1 - 1e-3 * 0.1, beta1: 0.9, beta2: 0.999, stepSize: 1e-3 / (1 - 0.9 ** t), invBc2Sqrt: 1 / Math.sqrt(1 - 0.999 ** t), eps: 1e-8 };
      adamwArena(rt, rec, n, P, G, M, Vb, { buf: loss, offset: 0 }, s);
      await rec.submit();
    }
    const after = await rt.readF32(P, 0, n);
    close(after, await variable.data(), "weights after 3 steps", 1e-6);
    const rec = record(rt);
    adamwArena(rt, rec, n, P, G, M, Vb, { buf: loss, offset: 1 }, { decay: 0.5, beta1: 0.9, beta2: 0.999, stepSize: 1, invBc2Sqrt: 1, eps: 1e-8 });
    await rec.submit();
    assert.deepEqual(await rt.readF32(P, 0, n), after, "a NaN loss left the weights alone");
    [P, G, M, Vb, loss].forEach((b) => rt.destroy(b));
    opt.dispose();
    variable.dispose();
  });
}
