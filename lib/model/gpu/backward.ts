/**
 * GPT-2's backward pass on the course's WebGPU kernels: by hand, in the reverse order of forward.ts, what
 * TF.js's autodiff does for the plain path (test/webgpu-step.test.ts checks the gradients against it).
 *
 *   final norm:  dxk = LN'(dxf); d(lnf scale, shift); dres (N, C) = dxk put back at the kept rows, 0 elsewhere
 *   per block, from the top (dres: the gradient of the block's output, updated in place):
 *     x'' = x' + GELU(h) @ W2 + b2,  h = LN2(x') @ W1 + b1
 *       db2 = Σ dres;  dW2 = GELU(h)ᵀ dres;  dh = (dres @ W2ᵀ) · GELU'(h)       3 dispatches
 *       db1 = Σ dh;    dW1 = LN2(x')ᵀ dh;    da = dh @ W1ᵀ                        3
 *       dres += LN2'(da);  d(ln2 scale, shift)                                   2
 *     x' = x + ctx @ Wo + bo
 *       dbo = Σ dres;  dWo = ctxᵀ dres;  dctx = dres @ Woᵀ                       3
 *     ctx = w v,  w = softmax(q kᵀ / √d), per head
 *       dw = dctx vᵀ;  dv = wᵀ dctx;  ds = w (dw - Σ w dw) / √d;  dq = ds k;  dk = dsᵀ q   5
 *     q|k|v = LN1(x) @ Wqkv + bqkv
 *       dbqkv = Σ dqkv;  dWqkv = LN1(x)ᵀ dqkv;  da = dqkv @ Wqkvᵀ                3
 *       dres += LN1'(da);  d(ln1 scale, shift)                                   2
 *   embeddings: dwte rows of the batch's tokens (cleared first), dwpe rows 0 … T-1     1 per block + 1
 *
 * 21 dispatches a layer. Every gradient is written (not added) once per step, so nothing is zeroed but
 * the two embedding tables, whose untouched rows must read 0.
 */
import type { Recorder } from "../../engine/webgpu/recorder";
import { GpuRuntime } from "../../engine/webgpu/runtime";
import type { Buf } from "../../engine/webgpu/runtime";
import { biasGrad } from "../../engine/webgpu/kernels/bias-grad";
import { positionEmbeddingGrad, tokenEmbeddingGrad } from "../../engine/webgpu/kernels/embedding";
import { layerNormBackward, layerNormParamGrad } from "../../engine/webgpu/kernels/layernorm";
import { matmul } from "../../engine/webgpu/kernels/matmul";
import { attentionSoftmaxBackward } from "../../engine/webgpu/kernels/attention-softmax";
import { gatherRows } from "../../engine/webgpu/kernels/rows";
import type { GPTConfig } from "../config";
import type { Capacity } from "./activations";
import type { Arenas } from "./arenas";
import { Pass, qkvView } from "./forward";

/** The backward pass's own buffers (shared by every layer). */
export class BackwardBuffers {
  readonly dres: Buf;
  readonly da: Buf;
  readonly dqkv: Buf;
  readonly datt: Buf;
  readonly dctx: Buf;
  readonly dh: Buf;
  readonly dxf: Buf;
  readonly dxk: Buf;

  constructor(private readonly rt: GpuRuntime, cfg: GPTConfig, cap: Capacity) {
    const C = cfg.embDim;
    this.dres = rt.buffer(cap.N * C * 4, "d residual");
    this.da = rt.buffer(cap.N * C * 4, "d norm output");
    this.dqkv = rt.buffer(cap.N * 3 * C * 4, "d qkv");
    this.datt = rt.buffer(cap.att * 4, "d attention");
    this.dctx = rt.buffer(cap.N * C * 4, "d context");
    this.dh = rt.buffer(cap.N * 4 * C * 4, "d hidden");
    this.dxf = rt.buffer(cap.K * C * 4, "d final norm");
    this.dxk = rt.buffer(cap.K * C * 4, "d head input");
  }

  dispose(): void {
    for (const b of [this.dres, this.da, this.dqkv, this.datt, this.dctx, this.dh, this.dxf, this.dxk]) this.rt.destroy(b);
  }
}

/** Zero the embedding tables' gradients (before the step's compute pass: a clear ends a pass). */
export function clearEmbeddingGrads(rec: Recorder, grads: Arenas): void {
  const C = grads.layout.cfg.embDim;
  grads.layout.blocks.forEach(([, count], j) => {
    const at = grads.at(`wte.${j}`);
    rec.clear(at.buf, at.offset * 4, count * C * 4);
  });
  const wpe = grads.at("wpe");
  rec.clear(wpe.buf, wpe.offset * 4, grads.layout.cfg.contextLength * C * 4);
}

/** Record the backward pass from dxf (K kept rows' final-norm gradient, from recordHeadLoss) to every parameter's gradient. */
export function recordBackward(p: Pass, K: number, grads: Arenas, d: BackwardBuffers): void {
  const { rt, rec, cfg, params, acts, meta } = p;
  const C = cfg.embDim;
  const N = p.B * p.T;
  const lnf = params.at("lnf.scale");
  layerNormBackward(rt, rec, { rows: K, C }, { buf: d.dxf, offset: 0 }, { buf: acts.xk, offset: 0 }, lnf.buf, lnf.offset, { buf: acts.xfs, offset: 0 }, { buf: d.dxk, offset: 0 }, false);
  const g = grads.at("lnf.scale");
  layerNormParamGrad(rt, rec, { rows: K, C }, { buf: d.dxf, offset: 0 }, { buf: acts.xk, offset: 0 }, { buf: acts.xfs, offset: 0 }, g.buf, g.offset, grads.at("lnf.shift").offset);
  gatherRows(rt, rec, N, C, { buf: d.dxk, offset: 0 }, { buf: p.metaBuf, offset: meta.scatter }, { buf: d.dres, offset: 0 });
  for (let l = cfg.nLayers - 1; l >= 0; l--) recordLayerBackward(p, l, grads, d);
  const dres = { buf: d.dres, offset: 0 };
  grads.layout.blocks.forEach(([start, count], j) => {
    const t = meta.tokens[j];
    tokenEmbeddingGrad(rt, rec, C, p.metaBuf, t.list, t.count, meta.rows, dres, { table: grads.at(`wte.${j}`), start, count });
  });
  positionEmbeddingGrad(rt, rec, p.B, p.T, C, dres, grads.at("wpe"));
}

function recordLayerBackward(p: Pass, l: number, grads: Arenas, d: BackwardBuffers): void {
  const { rt, rec, cfg, params, acts } = p;
  const { embDim: C, nHeads: H } = cfg;
  const hd = C / H;
  const { B, T } = p;
  const N = B * T;
  const L = acts.layer(l);
  const w = (name: string) => params.at(`h.${l}.${name}`);
  const gw = (name: string) => grads.at(`h.${l}.${name}`);
  const dres = { buf: d.dres, offset: 0, ld: C };

  // feed-forward: x'' = x' + GELU(h) @ W2 + b2
  biasGrad(rt, rec, N, C, dres, gw("fc2.b"));
  matmul(rt, rec, { label: "fc2 dW", M: 4 * C, N: C, K: N, transA: true, a: { buf: L.fcg, offset: 0, ld: 4 * C }, b: dres, c: { ...gw("fc2.w"), ld: C } }); // (4C, N) @ (N, C)
  matmul(rt, rec, { label: "fc2 dx", M: N, N: 4 * C, K: C, transB: true, epilogue: "geluGrad", x: { buf: L.fch, offset: 0, ld: 4 * C }, a: dres, b: { ...w("fc2.w"), ld: C }, c: { buf: d.dh, offset: 0, ld: 4 * C } }); // (N, C) @ (C, 4C)
  const dh = { buf: d.dh, offset: 0, ld: 4 * C };
  biasGrad(rt, rec, N, 4 * C, dh, gw("fc.b"));
  matmul(rt, rec, { label: "fc dW", M: C, N: 4 * C, K: N, transA: true, a: { buf: L.ln2, offset: 0, ld: C }, b: dh, c: { ...gw("fc.w"), ld: 4 * C } }); // (C, N) @ (N, 4C)
  matmul(rt, rec, { label: "fc dx", M: N, N: C, K: 4 * C, transB: true, a: dh, b: { ...w("fc.w"), ld: 4 * C }, c: { buf: d.da, offset: 0, ld: C } }); // (N, 4C) @ (4C, C)
  const ln2 = w("ln2.scale");
  layerNormBackward(rt, rec, { rows: N, C }, { buf: d.da, offset: 0 }, { buf: L.resMid, offset: 0 }, ln2.buf, ln2.offset, { buf: L.ln2s, offset: 0 }, { buf: d.dres, offset: 0 }, true);
  const g2 = gw("ln2.scale");
  layerNormParamGrad(rt, rec, { rows: N, C }, { buf: d.da, offset: 0 }, { buf: L.resMid, offset: 0 }, { buf: L.ln2s, offset: 0 }, g2.buf, g2.offset, gw("ln2.shift").offset);

  // attention's projection: x' = x + ctx @ Wo + bo
  biasGrad(rt, rec, N, C, dres, gw("proj.b"));
  matmul(rt, rec, { label: "proj dW", M: C, N: C, K: N, transA: true, a: { buf: L.ctx, offset: 0, ld: C }, b: dres, c: { ...gw("proj.w"), ld: C } });
  matmul(rt, rec, { label: "proj dx", M: N, N: C, K: C, transB: true, a: dres, b: { ...w("proj.w"), ld: C }, c: { buf: d.dctx, offset: 0, ld: C } });

  // attention, per row b and head h: ctx = w v, w = softmax(q kᵀ / √d)
  const qkv = qkvView(p, l);
  const heads = { outer: B, inner: H };
  const dctx = { buf: d.dctx, offset: 0, ld: C, so: T * C, si: hd }; // (T, d) of head h
  const att = { buf: L.att, offset: 0, ld: T, so: H * T * T, si: T * T }; // (T, T)
  const datt = { buf: d.datt, offset: 0, ld: T, so: H * T * T, si: T * T };
  const part = (k: number) => ({ buf: qkv.buf, offset: k * C, ld: 3 * C, so: qkv.batchStride, si: hd }); // q, k or v (T, d)
  const dpart = (k: number) => ({ buf: d.dqkv, offset: k * C, ld: 3 * C, so: T * 3 * C, si: hd });
  matmul(rt, rec, { label: "attn dw", M: T, N: T, K: hd, ...heads, transB: true, a: dctx, b: part(2), c: datt }); // dw = dctx vᵀ
  matmul(rt, rec, { label: "attn dv", M: T, N: hd, K: T, ...heads, transA: true, a: att, b: dctx, c: dpart(2) }); // dv = wᵀ dctx
  attentionSoftmaxBackward(rt, rec, { Z: B * H, Tq: T, Tk: T, past: 0 }, { buf: L.att, offset: 0 }, { buf: d.datt, offset: 0 }, 1 / Math.sqrt(hd));
  matmul(rt, rec, { label: "attn dq", M: T, N: hd, K: T, ...heads, a: datt, b: part(1), c: dpart(0) }); // dq = ds k
  matmul(rt, rec, { label: "attn dk", M: T, N: hd, K: T, ...heads, transA: true, a: datt, b: part(0), c: dpart(1) }); // dk = dsᵀ q

  // q|k|v = LN1(x) @ Wqkv + bqkv
  const dqkv = { buf: d.dqkv, offset: 0, ld: 3 * C };
  if (cfg.qkvBias) biasGrad(rt, rec, N, 3 * C, dqkv, gw("qkv.b"));
  matmul(rt, rec, { label: "qkv dW", M: C, N: 3 * C, K: N, transA: true, a: { buf: L.ln1, offset: 0, ld: C }, b: dqkv, c: { ...gw("qkv.w"), ld: 3 * C } });
  matmul(rt, rec, { label: "qkv dx", M: N, N: C, K: 3 * C, transB: true, a: dqkv, b: { ...w("qkv.w"), ld: 3 * C }, c: { buf: d.da, offset: 0, ld: C } });
  const ln1 = w("ln1.scale");
  layerNormBackward(rt, rec, { rows: N, C }, { buf: d.da, offset: 0 }, { buf: acts.resIn(l), offset: 0 }, ln1.buf, ln1.offset, { buf: L.ln1s, offset: 0 }, { buf: d.dres, offset: 0 }, true);
  const g1 = gw("ln1.scale");
  layerNormParamGrad(rt, rec, { rows: N, C }, { buf: d.da, offset: 0 }, { buf: acts.resIn(l), offset: 0 }, { buf: L.ln1s, offset: 0 }, g1.buf, g1.offset, gw("ln1.shift").offset);
}
