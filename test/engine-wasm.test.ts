// The wasm patches (lib/engine/wasm-*.ts) give the cpu backend's results.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { Rng } from "../lib/core/random";
import { blasMatMulInstalled, loadBlas, MULTI_GEMV } from "../lib/engine/blas-matmul";

const quiet = { log: () => {} };

/** Run f on the cpu backend, then on wasm (patched or not); return both results as flat arrays. */
async function onBoth(f: () => tf.Tensor | tf.Tensor[], patches = true): Promise<{ cpu: number[][]; wasm: number[][] }> {
  const run = () => {
    const out = tf.tidy(f);
    const list = Array.isArray(out) ? out : [out];
    const arrays = list.map((t) => Array.from(t.dataSync()));
    tf.dispose(list);
    return arrays;
  };
  await initEngine({ backend: "cpu", ...quiet });
  const cpu = run();
  await initEngine({ backend: "wasm", patches, ...quiet });
  const wasm = run();
  return { cpu, wasm };
}

function assertClose(actual: number[][], expected: number[][], tol = 1e-4): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, k) => {
    assert.equal(a.length, expected[k].length, `output ${k}: length`);
    a.forEach((v, i) => {
      const e = expected[k][i];
      assert.ok(Math.abs(v - e) <= tol * Math.max(1, Math.abs(e)), `output ${k}[${i}]: ${v} vs ${e}`);
    });
  });
}

function randn(rng: Rng, shape: number[]): tf.Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(Array.from({ length: n }, () => rng.next() * 2 - 1), shape);
}

test("UnsortedSegmentSum: duplicates add up, out-of-range ids are dropped, as on cpu", async () => {
  const { cpu, wasm } = await onBoth(() => {
    const rng = new Rng(1);
    const x = randn(rng, [7, 3, 2]);
    const ids = tf.tensor1d([0, 4, 4, -1, 2, 5, 0], "int32"); // -1 and 5 (= numSegments) are dropped
    return tf.unsortedSegmentSum(x, ids, 5);
  });
  assertClose(wasm, cpu, 1e-6);
});

test("the gradient of gather (the embedding lookup) matches cpu", async () => {
  const { cpu, wasm } = await onBoth(() => {
    const rng = new Rng(2);
    const table = randn(rng, [11, 4]);
    const idx = tf.tensor2d([[1, 3, 3], [10, 0, 1]], [2, 3], "int32");
    const w = randn(rng, [2, 3, 4]);
    return tf.grad((t: tf.Tensor) => tf.gather(t, idx).mul(w).sum())(table);
  });
  assertClose(wasm, cpu, 1e-6);
});

test("gather with batchDims (wrong in wasm's own kernel) matches cpu, forward and gradient", async () => {
  const { cpu, wasm } = await onBoth(() => {
    const rng = new Rng(3);
    const logits = randn(rng, [4, 6]);
    const picks = tf.tensor1d([5, 0, 2, 2], "int32");
    const x = randn(rng, [2, 3, 4, 5]);
    const idx = tf.tensor2d([[3, 0], [1, 1]], [2, 2], "int32");
    return [
      tf.gather(logits, picks, 1, 1), // one value per row: the masked loss's pattern
      tf.gather(x, idx, 2, 1), // outer and slice dims around the gathered axis
      tf.grad((t: tf.Tensor) => tf.gather(t, picks, 1, 1).square().sum())(logits),
    ];
  });
  assertClose(wasm, cpu, 1e-6);
});

const MATMUL_CASES: [string, number[], number[], boolean, boolean][] = [
  ["2-D, B transposed", [5, 7], [9, 7], false, true],
  ["2-D, A transposed", [7, 5], [7, 9], true, false],
  ["2-D, both", [7, 5], [9, 7], true, true],
  ["batched, B transposed (attention scores)", [3, 5, 4], [3, 6, 4], false, true],
  ["rank 4 with a broadcast batch, A transposed", [2, 3, 4, 5], [1, 3, 4, 6], true, false],
  ["plain (up to 8 rows: one OpenBLAS thread)", [5, 7], [7, 9], false, false],
  ["more rows than one thread takes (OpenBLAS's own threads)", [13, 7], [7, 9], false, false],
  ["batched with one shared B (a linear layer on 3-D input)", [3, 5, 7], [7, 9], false, false],
  ["one A against a batch of B, B transposed", [5, 7], [3, 9, 7], false, true],
  ["batches that broadcast both ways (BLAS hands them back to wasm)", [2, 1, 5, 7], [3, 7, 9], false, false],
  ["one row (a generated token: matrix-vector on BLAS)", [1, 7], [7, 9], false, false],
  ["one row, B transposed", [1, 7], [9, 7], false, true],
  ["one row, A transposed", [7, 1], [7, 9], true, false],
  ["batched single rows (attention of one new token)", [3, 1, 4], [3, 4, 6], false, false],
];

for (const [name, aShape, bShape, ta, tb] of MATMUL_CASES) {
  test(`matMul ${name}: patched wasm = unpatched wasm = cpu`, async () => {
    const f = () => {
      const rng = new Rng(4);
      return tf.matMul(randn(rng, aShape), randn(rng, bShape), ta, tb);
    };
    const patched = await onBoth(f, true);
    const unpatched = await onBoth(f, false);
    assertClose(patched.wasm, patched.cpu);
    assertClose(unpatched.wasm, patched.cpu);
  });
}

test("2-8 rows times a weight matrix over 1 MiB: matrix-vector products a block at a time (MULTI_GEMV), as sgemm and cpu", async () => {
  const cases: [string, number[], number[], boolean][] = [
    ["4 rows, B (k, n)", [4, 256], [256, 1100], false],
    ["3 rows, B (n, k) transposed (a tied head)", [3, 256], [1100, 256], true],
    ["2 × 2 rows of a 3-D input against one B", [2, 2, 256], [256, 1100], false],
    ["2 rows, blocks with a ragged last one", [2, 64], [64, 4500], false],
    ["8 rows (a generation batch)", [8, 256], [256, 1100], false],
  ];
  for (const [name, aShape, bShape, tb] of cases) {
    const f = () => {
      const rng = new Rng(8);
      return tf.matMul(randn(rng, aShape), randn(rng, bShape), false, tb);
    };
    const saved = { on: MULTI_GEMV.on, blockBytes: MULTI_GEMV.blockBytes };
    MULTI_GEMV.blockBytes = 64 << 10; // several blocks even for these sizes
    try {
      const before = MULTI_GEMV.calls;
      const blocked = await onBoth(f);
      if (loadBlas().library !== null) assert.equal(MULTI_GEMV.calls, before + 1, `${name}: did not run as matrix-vector products`);
      MULTI_GEMV.on = false;
      const gemm = await onBoth(f);
      assertClose(blocked.wasm, blocked.cpu);
      assertClose(gemm.wasm, blocked.cpu);
    } finally {
      Object.assign(MULTI_GEMV, saved);
    }
  }
  // 9 rows, or a small B: sgemm as before
  const before = MULTI_GEMV.calls;
  await onBoth(() => tf.matMul(randn(new Rng(9), [9, 256]), randn(new Rng(10), [256, 1100])));
  await onBoth(() => tf.matMul(randn(new Rng(9), [4, 64]), randn(new Rng(10), [64, 64])));
  assert.equal(MULTI_GEMV.calls, before);
});

test("with a BLAS on the machine, patched wasm runs its matmuls there (CI installs OpenBLAS)", async () => {
  await initEngine({ backend: "wasm", patches: true, ...quiet });
  const blas = loadBlas();
  if (blas.library === null) {
    assert.ok(process.env.CI !== "true", `CI must have a BLAS: ${blas.reason}`);
    return;
  }
  assert.ok(blasMatMulInstalled());
  await initEngine({ backend: "wasm", patches: false, ...quiet });
  assert.ok(!blasMatMulInstalled(), "unpatched wasm must use its own matmul");
});

test("patched Identity shares the data instead of copying it, and each tensor can be disposed on its own", async () => {
  await initEngine({ backend: "wasm", patches: true, ...quiet });
  const backend = tf.engine().backend;
  const x = tf.tensor1d([1, 2, 3]);
  const buffers = backend.numDataIds();
  const y = tf.engine().runKernel("Identity", { x }) as tf.Tensor;
  assert.equal(backend.numDataIds(), buffers, "Identity made a new buffer");
  x.dispose();
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 3]);
  y.dispose();
  assert.equal(backend.numDataIds(), buffers - 1, "the shared buffer was not freed with its last tensor");
});

test("a tiny GPT-like training step: wasm gradients equal cpu's", async () => {
  const { cpu, wasm } = await onBoth(() => {
    const rng = new Rng(5);
    const [V, C, B, T] = [13, 8, 2, 5];
    const params = [randn(rng, [V, C]), randn(rng, [T, C]), randn(rng, [C, C]), randn(rng, [C, V])];
    const idx = tf.tensor2d([[1, 2, 3, 4, 5], [6, 7, 8, 9, 12]], [B, T], "int32");
    const targets = tf.tensor1d([2, 3, 4, 5, 0, 7, 8, 9, 12, 1], "int32");
    const loss = (tok: tf.Tensor, pos: tf.Tensor, w: tf.Tensor, head: tf.Tensor) => {
      const x = tf.gather(tok, idx).add(pos); // (B, T, C)
      const h = tf.matMul(x.reshape([B * T, C]), w).tanh(); // (B·T, C) @ (C, C)
      const scores = tf.matMul(h.reshape([B, T, C]), h.reshape([B, T, C]), false, true); // (B, T, T)
      const mixed = tf.matMul(tf.softmax(scores), h.reshape([B, T, C])).reshape([B * T, C]); // (B·T, C)
      const logp = tf.logSoftmax(tf.matMul(mixed, head)); // (B·T, C) @ (C, V) -> (B·T, V)
      return tf.gather(logp, targets, 1, 1).mean().neg() as tf.Scalar;
    };
    const { value, grads } = tf.valueAndGrads(loss)(params);
    return [value, ...grads];
  });
  assertClose(wasm, cpu, 1e-4);
});

test("patched kernels leak no tensors and no wasm buffers", async () => {
  await initEngine({ backend: "wasm", patches: true, ...quiet });
  const rng = new Rng(6);
  const a = randn(rng, [6, 4]);
  const b = randn(rng, [5, 4]);
  const table = randn(rng, [9, 4]);
  const ids = tf.tensor1d([0, 8, 8], "int32");
  const backend = tf.engine().backend;
  const before = { tensors: tf.memory().numTensors, buffers: backend.numDataIds() };
  tf.tidy(() => {
    tf.matMul(a, b, false, true).dataSync();
    tf.matMul(a, a, true, false).dataSync();
    tf.grad((t: tf.Tensor) => tf.gather(t, ids).sum())(table).dataSync();
    tf.gather(a, tf.tensor1d([1, 0, 3, 2, 0, 0], "int32"), 1, 1).dataSync();
  });
  assert.deepEqual({ tensors: tf.memory().numTensors, buffers: backend.numDataIds() }, before);
  tf.dispose([a, b, table, ids]);
});
