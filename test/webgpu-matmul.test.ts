// The tiled matmul kernel (lib/engine/webgpu/kernels/matmul.ts) against TF.js's matMul on random inputs of
// awkward shapes (not multiples of any tile), every transpose, every tile, every epilogue, batched with two
// batch strides, and accumulation. On this machine's WebGPU adapter (lavapipe in CI).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { matmul, TILES, Epilogue } from "../lib/engine/webgpu/kernels/matmul";
import { gelu } from "../lib/model/feedforward";
import { record } from "../lib/engine/webgpu/recorder";
import { gpuTest, maxRelDiff, randomArray, upload } from "./helpers/gpu-kernels";

const TOL = 2e-5;

for (const tile of Object.keys(TILES)) {
  for (const [transA, transB] of [[false, false], [true, false], [false, true], [true, true]]) {
    gpuTest(`matmul ${tile} ${transA ? "Aᵀ" : "A"} @ ${transB ? "Bᵀ" : "B"} on (37, 51) x (51, 70) equals tf.matMul`, async (rt) => {
      const [M, K, N] = [37, 51, 70];
      const a = randomArray(M * K, 1);
      const b = randomArray(K * N, 2);
      const ta = tf.tensor2d(a, transA ? [K, M] : [M, K]);
      const tb = tf.tensor2d(b, transB ? [N, K] : [K, N]);
      const want = tf.matMul(ta, tb, transA, transB);
      const [A, B, C] = [upload(rt, a), upload(rt, b), rt.buffer(M * N * 4, "c")];
      const rec = record(rt);
      matmul(rt, rec, { M, N, K, a: { buf: A, offset: 0, ld: transA ? M : K }, b: { buf: B, offset: 0, ld: transB ? K : N }, c: { buf: C, offset: 0, ld: N }, transA, transB, tile });
      await rec.submit();
      const got = await rt.readF32(C, 0, M * N);
      assert.ok(maxRelDiff(got, await want.data()) < TOL, `differs by ${maxRelDiff(got, await want.data())}`);
      [A, B, C].forEach((x) => rt.destroy(x));
      tf.dispose([ta, tb, want]);
    });
  }
}

const EPILOGUES: Epilogue[] = ["bias", "residual", "gelu", "geluGrad"];
for (const epilogue of EPILOGUES) {
  gpuTest(`matmul epilogue ${epilogue}, alpha 0.5, offsets, on (70, 33) x (33, 129) equals TF.js`, async (rt) => {
    const [M, K, N] = [70, 33, 129];
    const a = randomArray(M * K, 3);
    const b = randomArray(K * N, 4);
    const bias = randomArray(N, 5);
    const x = randomArray(M * N, 6, -3, 3);
    const acc = tf.tidy(() => tf.mul(tf.matMul(tf.tensor2d(a, [M, K]), tf.tensor2d(b, [K, N])), 0.5));
    const pre = tf.tidy(() => tf.add(acc, tf.tensor1d(bias)));
    const want: Record<Epilogue, () => tf.Tensor> = {
      none: () => acc.clone(),
      bias: () => pre.clone(),
      residual: () => tf.add(pre, tf.tensor2d(x, [M, N])),
      gelu: () => gelu(pre),
      // d/dh gelu(h) · acc, by TF.js's autodiff of the library's GELU
      geluGrad: () => tf.tidy(() => tf.mul(tf.grad((h: tf.Tensor) => gelu(h))(tf.tensor2d(x, [M, N]), tf.onesLike(acc)), acc)),
    };
    const expected = tf.tidy(want[epilogue]);
    // operands at odd element offsets inside larger buffers
    const pad = 7;
    const A = upload(rt, Float32Array.from([...new Float32Array(pad), ...a]));
    const B = upload(rt, Float32Array.from([...new Float32Array(pad), ...b]));
    const Bias = upload(rt, Float32Array.from([...new Float32Array(3), ...bias]));
    const X = upload(rt, Float32Array.from([...new Float32Array(5), ...x]));
    const C = rt.buffer((M * N + 11) * 4, "c");
    const rec = record(rt);
    matmul(rt, rec, {
      M, N, K, alpha: 0.5, epilogue,
      a: { buf: A, offset: pad, ld: K }, b: { buf: B, offset: pad, ld: N }, c: { buf: C, offset: 11, ld: N },
      ...(epilogue !== "geluGrad" ? { bias: { buf: Bias, offset: 3 } } : {}),
      x: { buf: X, offset: 5, ld: N },
    });
    await rec.submit();
    const got = await rt.readF32(C, 11, M * N);
    const d = maxRelDiff(got, await expected.data());
    assert.ok(d < TOL, `${epilogue} differs by ${d}`);
    if (epilogue === "gelu") {
      const kept = await rt.readF32(X, 5, M * N);
      assert.ok(maxRelDiff(kept, await pre.data()) < TOL, "the pre-activation is kept in X");
    }
    [A, B, Bias, X, C].forEach((buf) => rt.destroy(buf));
    tf.dispose([acc, pre, expected]);
  });
}

gpuTest("batched matmul: per-head slices through two batch strides, accumulated (beta 1) onto C", async (rt) => {
  // Q (B, T, H·D) @ Kᵀ per (b, h): the attention scores, reading heads in place
  const [Bn, T, H, D] = [3, 19, 2, 8];
  const q = randomArray(Bn * T * H * D, 7);
  const k = randomArray(Bn * T * H * D, 8);
  const prior = randomArray(Bn * H * T * T, 9);
  const heads = (x: Float32Array) => tf.tensor4d(x, [Bn, T, H, D]).transpose([0, 2, 1, 3]); // (B, H, T, D)
  const want = tf.tidy(() => tf.add(tf.matMul(heads(q), heads(k), false, true), tf.tensor4d(prior, [Bn, H, T, T])));
  const [Q, Kb, S] = [upload(rt, q), upload(rt, k), upload(rt, prior)];
  const rec = record(rt);
  matmul(rt, rec, {
    M: T, N: T, K: D, outer: Bn, inner: H, transB: true, beta: 1,
    a: { buf: Q, offset: 0, ld: H * D, so: T * H * D, si: D },
    b: { buf: Kb, offset: 0, ld: H * D, so: T * H * D, si: D },
    c: { buf: S, offset: 0, ld: T, so: H * T * T, si: T * T },
  });
  await rec.submit();
  const got = await rt.readF32(S, 0, Bn * H * T * T);
  assert.ok(maxRelDiff(got, await want.data()) < TOL);
  [Q, Kb, S].forEach((b) => rt.destroy(b));
  want.dispose();
});

for (const epilogue of ["none", ...EPILOGUES] as Epilogue[]) {
  gpuTest(`split-K: 3 slices of K = 1100, Aᵀ @ Bᵀ, epilogue ${epilogue}, beta 1: TF.js's result`, async (rt) => {
    const [M, K, N] = [21, 1100, 37];
    const a = randomArray(M * K, 71);
    const b = randomArray(K * N, 72);
    const bias = randomArray(N, 73);
    const x = randomArray(M * N, 74, -3, 3);
    const prior = randomArray(M * N, 75);
    const acc = tf.tidy(() => tf.mul(tf.matMul(tf.tensor2d(a, [K, M]), tf.tensor2d(b, [N, K]), true, true), 0.5));
    const pre = tf.tidy(() => tf.add(acc, tf.tensor1d(bias)));
    const y: Record<Epilogue, () => tf.Tensor> = {
      none: () => acc.clone(),
      bias: () => pre.clone(),
      residual: () => tf.add(pre, tf.tensor2d(x, [M, N])),
      gelu: () => gelu(pre),
      geluGrad: () => tf.mul(tf.grad((h: tf.Tensor) => gelu(h))(tf.tensor2d(x, [M, N]), tf.onesLike(acc)), acc),
    };
    const expected = tf.tidy(() => tf.add(y[epilogue](), tf.tensor2d(prior, [M, N])));
    const [A, B, Bias, X, C] = [upload(rt, a), upload(rt, b), upload(rt, bias), upload(rt, x), upload(rt, prior)];
    const rec = record(rt);
    matmul(rt, rec, {
      M, N, K, alpha: 0.5, beta: 1, epilogue, transA: true, transB: true, split: 3,
      a: { buf: A, offset: 0, ld: M }, b: { buf: B, offset: 0, ld: K }, c: { buf: C, offset: 0, ld: N },
      ...(epilogue === "bias" || epilogue === "residual" || epilogue === "gelu" ? { bias: { buf: Bias, offset: 0 } } : {}),
      x: { buf: X, offset: 0, ld: N },
    });
    await rec.submit();
    const d = maxRelDiff(await rt.readF32(C, 0, M * N), await expected.data());
    assert.ok(d < TOL, `split-K ${epilogue} differs by ${d}`);
    [A, B, Bias, X, C].forEach((buf) => rt.destroy(buf));
    tf.dispose([acc, pre, expected]);
  });
}
