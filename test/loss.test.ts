// The masked cross-entropy: the book's worked example, agreement with a plain
// softmax computation, stability, the all-ignored error, and calcLossLoader.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { DataError } from "../lib/core/errors";
import { GPTModel } from "../lib/model/gpt";
import { calcLossBatch, calcLossLoader, maskedCrossEntropy } from "../lib/train/loss";
import { IGNORE_INDEX } from "../lib/data/collate";

before(async () => {
  await initEngine({ log: () => {} });
});

/** The book's call: torch.nn.functional.cross_entropy(logits (N, V), targets (N,)). */
function lossOf(logits: number[][], targets: number[]): number {
  return tf.tidy(() => maskedCrossEntropy(tf.tensor2d(logits), tf.tensor1d(targets, "int32")).dataSync()[0]);
}

test("the book's cross-entropy example: 1.1269, 0.7936, and 1.1269 with the third target ignored", () => {
  const logits1 = [[-1.0, 1.0], [-0.5, 1.5]];
  const logits2 = [[-1.0, 1.0], [-0.5, 1.5], [-0.5, 1.5]];
  assert.equal(lossOf(logits1, [0, 1]).toFixed(4), "1.1269");
  assert.equal(lossOf(logits2, [0, 1, 1]).toFixed(4), "0.7936");
  assert.equal(lossOf(logits2, [0, 1, IGNORE_INDEX]).toFixed(4), "1.1269");
});

test("equals -mean log softmax at the targets, over the kept positions only", () => {
  const logits = tf.randomNormal([2, 3, 7], 0, 2, "float32", 5);
  const targets = [[1, 6, IGNORE_INDEX], [0, IGNORE_INDEX, 3]];
  const got = tf.tidy(() => maskedCrossEntropy(logits, tf.tensor2d(targets, undefined, "int32")).dataSync()[0]);
  const logp = tf.tidy(() => tf.logSoftmax(logits, -1).arraySync() as number[][][]);
  let sum = 0;
  let n = 0;
  targets.forEach((row, b) => row.forEach((t, i) => {
    if (t !== IGNORE_INDEX) { sum -= logp[b][i][t]; n++; }
  }));
  assert.ok(Math.abs(got - sum / n) < 1e-5, `${got} vs ${sum / n}`);
  logits.dispose();
});

test("stable for large logits (log-sum-exp, no overflow)", () => {
  const v = lossOf([[1000, 0, -1000], [5000, 5000, 0]], [0, 2]);
  // position 0: ~0; position 1: 5000 + log 2; mean = (5000 + log 2) / 2
  assert.ok(Number.isFinite(v));
  assert.ok(Math.abs(v - (5000 + Math.log(2)) / 2) < 1e-2, String(v));
});

test("a batch where every target is ignored is an error, not a silent NaN", () => {
  assert.throws(() => lossOf([[1, 2], [3, 4]], [IGNORE_INDEX, IGNORE_INDEX]), DataError);
  assert.throws(() => lossOf([[1, 2], [3, 4]], [IGNORE_INDEX, IGNORE_INDEX]), /all 2 targets are IGNORE_INDEX/);
});

test("(B, T, V) with (B, T) gives the same loss as the flattened (N, V) with (N,)", () => {
  const logits = [[[0.1, 2, -1], [1, 0, 0]], [[3, 1, 2], [0, 0, 5]]];
  const targets = [[2, 0], [IGNORE_INDEX, 2]];
  const batched = tf.tidy(() => maskedCrossEntropy(tf.tensor3d(logits), tf.tensor2d(targets, undefined, "int32")).dataSync()[0]);
  assert.ok(Math.abs(batched - lossOf(logits.flat(), targets.flat())) < 1e-7);
  assert.throws(
    () => tf.tidy(() => maskedCrossEntropy(tf.zeros([2, 3, 5]), tf.zeros([2, 4], "int32"))),
    /logits \[2,3,5\] and targets \[2,4\] must be/,
  );
});

test("a target outside the vocabulary is an error naming its position", () => {
  assert.throws(() => lossOf([[1, 2], [3, 4]], [0, 2]), /target 2 at flat position 1/);
  assert.throws(() => lossOf([[1, 2], [3, 4]], [-1, 0]), DataError);
});

test("gradient flows only to the kept positions and matches softmax - onehot", () => {
  const logits = tf.tensor3d([[[0.5, -1, 2], [1, 1, 1], [0, 3, -2]]]);
  const targets = tf.tensor2d([[2, IGNORE_INDEX, 0]], undefined, "int32");
  const g = tf.grad((x: tf.Tensor) => maskedCrossEntropy(x, targets))(logits);
  const grad = g.arraySync() as number[][][];
  const p = tf.softmax(logits).arraySync() as number[][][];
  // kept positions 0 and 2, mean over 2: d/dlogit = (softmax - onehot) / 2
  for (const [pos, t] of [[0, 2], [2, 0]]) {
    for (let k = 0; k < 3; k++) {
      const want = (p[0][pos][k] - (k === t ? 1 : 0)) / 2;
      assert.ok(Math.abs(grad[0][pos][k] - want) < 1e-6, `pos ${pos} class ${k}`);
    }
  }
  assert.deepEqual(grad[0][1], [0, 0, 0]);
  tf.dispose([logits, targets, g]);
});

test("calcLossLoader: the mean of batch means, capped by numBatches, NaN when empty", async () => {
  const model = new GPTModel({ vocabSize: 11, contextLength: 8, embDim: 8, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true }, { seed: 1 });
  const mk = (inputs: number[][], targets: number[][]) => ({
    inputs: tf.tensor2d(inputs, undefined, "int32"),
    targets: tf.tensor2d(targets, undefined, "int32"),
  });
  const batches = [
    mk([[1, 2, 3]], [[2, 3, 4]]),
    mk([[5, 6, 7, 8]], [[6, 7, IGNORE_INDEX, IGNORE_INDEX]]),
    mk([[9, 10], [1, 1]], [[10, 1], [1, IGNORE_INDEX]]),
  ];
  const each = batches.map((b) => tf.tidy(() => calcLossBatch(model, b.inputs, b.targets).dataSync()[0]));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.ok(Math.abs((await calcLossLoader(batches, model)) - mean(each)) < 1e-6);
  assert.ok(Math.abs((await calcLossLoader(batches, model, 2)) - mean(each.slice(0, 2))) < 1e-6);
  assert.ok(Math.abs((await calcLossLoader(batches, model, 10)) - mean(each)) < 1e-6);
  assert.ok(Number.isNaN(await calcLossLoader([], model)));
  // arrays belong to the caller: still usable
  assert.equal(batches[0].inputs.isDisposed, false);

  // batches from a generator are disposed once used, and none are made past numBatches
  const before = tf.memory().numTensors;
  let made = 0;
  function* gen() {
    for (const b of batches) {
      made++;
      yield { inputs: b.inputs.clone(), targets: b.targets.clone() };
    }
  }
  const fromGen = await calcLossLoader(gen(), model, 2);
  assert.ok(Math.abs(fromGen - mean(each.slice(0, 2))) < 1e-6);
  assert.equal(made, 2);
  assert.equal(tf.memory().numTensors, before);
  tf.dispose(batches.flatMap((b) => [b.inputs, b.targets]));
  model.dispose();
});
