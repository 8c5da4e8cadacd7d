// The cpu engine's patch (lib/engine/cpu-kernels.ts): UnsortedSegmentSum, the embedding's gradient, gives the
// shipped kernel's numbers in one pass, finishes a 50,257-row table in well under a second, and comes off with
// the patches; a training step of a model with GPT-2's vocabulary then runs on the last-resort engine and
// leaves no tensors behind.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { cpuPatchesInstalled, installCpuPatches } from "../lib/engine/cpu-kernels";
import { GPTModel } from "../lib/model/gpt";
import { AdamW } from "../lib/train/adamw";
import { trainStep } from "../lib/train/step";

before(async () => {
  await initEngine({ backend: "cpu", log: () => {} });
});

const segmentSum = (x: tf.Tensor, ids: tf.Tensor1D, n: number) => tf.tidy(() => Array.from(tf.unsortedSegmentSum(x, ids, n).dataSync()));

test("the patched UnsortedSegmentSum gives the shipped kernel's sums (ids out of range dropped, float32 and int32)", () => {
  assert.ok(cpuPatchesInstalled());
  const x = tf.randomNormal([37, 3, 5], 0, 1, "float32", 7);
  const xi = tf.randomUniform([37, 3, 5], -50, 50, "int32", 8);
  const ids = tf.tensor1d([...Array(37).keys()].map((i) => ((i * 7) % 13) - 2), "int32"); // -2..10: a few dropped
  const patched = [segmentSum(x, ids, 11), segmentSum(xi, ids, 11)];
  installCpuPatches(false);
  try {
    assert.ok(!cpuPatchesInstalled());
    assert.deepEqual([segmentSum(x, ids, 11), segmentSum(xi, ids, 11)], patched);
  } finally {
    installCpuPatches(true);
  }
  tf.dispose([x, xi, ids]);
});

test("the embedding's gradient over GPT-2's 50,257 rows takes well under a second with the patch", () => {
  const table = tf.variable(tf.randomNormal([50257, 16], 0, 1, "float32", 1));
  const ids = tf.randomUniform([8 * 68], 0, 50257, "int32", 2) as tf.Tensor1D;
  const t0 = performance.now();
  const { value, grads } = tf.variableGrads(() => tf.sum(tf.gather(table, ids)) as tf.Scalar, [table]);
  const sums = grads[table.name].sum().dataSync()[0];
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(Math.round(sums), 8 * 68 * 16); // every looked-up row's 16 ones, added where they came from
  assert.ok(seconds < 1, `${seconds.toFixed(2)} s`);
  tf.dispose([value, table, ids, ...Object.values(grads)]);
});

test("a training step of a model with GPT-2's vocabulary runs on the cpu engine and leaks nothing", async () => {
  const model = new GPTModel({ vocabSize: 50257, contextLength: 16, embDim: 16, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true });
  const optimizer = new AdamW(model.trainableParams(), { lr: 1e-3 });
  const inputs = tf.tensor2d([[15496, 11, 314, 716, 257, 1332], [50256, 464, 2068, 7586, 21831, 50256]], undefined, "int32");
  const targets = tf.tensor2d([[11, 314, 716, 257, 1332, 13], [464, 2068, 7586, 21831, 50256, -100]], undefined, "int32");
  await trainStep(model, optimizer, inputs, targets, 1); // the moments are made on the first step
  const start = tf.memory().numTensors;
  const t0 = performance.now();
  const loss = await trainStep(model, optimizer, inputs, targets, 2);
  const seconds = (performance.now() - t0) / 1000;
  assert.ok(Number.isFinite(loss) && loss > 9 && loss < 12, `loss ${loss}`); // ~ln(50257) from random weights
  assert.equal(tf.memory().numTensors, start, "the step leaked tensors");
  assert.ok(seconds < 20, `${seconds.toFixed(1)} s a step`);
  tf.dispose([inputs, targets]);
  optimizer.dispose();
  model.dispose();
});
