// The trainer's fused loss (lib/train/fused-loss.ts) equals the plain definition
// (lib/train/loss.ts): the loss and every gradient, with the wasm gradient kernel and without.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { DataError } from "../lib/core/errors";
import { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { calcLossBatch, maskedCrossEntropy } from "../lib/train/loss";
import { IGNORE_INDEX } from "../lib/data/collate";
import { XENT_GRAD_KERNEL } from "../lib/engine/kernel-names";
import { calcLossBatchFused, HEAD_GRAD, headCrossEntropy, headCrossEntropyEager, softmaxCrossEntropy } from "../lib/train/fused-loss";
import { registerXentGradKernel, unregisterXentGradKernel } from "../lib/engine/wasm-xent-grad";

const CFG: GPTConfig = { vocabSize: 97, contextLength: 16, embDim: 12, nHeads: 3, nLayers: 2, dropRate: 0, qkvBias: true };

before(async () => {
  await initEngine({ backend: "wasm", log: () => {} });
});

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

/** Loss and logits-gradient of a loss function of (K, V) logits. */
function lossAndGrad(f: (x: tf.Tensor2D) => tf.Scalar, logits: tf.Tensor2D): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => f(x as tf.Tensor2D))(logits);
    return { loss: value.dataSync()[0], grad: grad.dataSync() as Float32Array };
  });
}

for (const kernel of [true, false]) {
  const how = kernel ? "with the wasm gradient kernel" : "with plain tf ops";
  test(`softmaxCrossEntropy = maskedCrossEntropy, value and gradient, ${how}`, () => {
    if (kernel) registerXentGradKernel();
    else unregisterXentGradKernel();
    try {
      assert.equal(tf.getKernel(XENT_GRAD_KERNEL, "wasm") !== undefined, kernel);
      const labels = Int32Array.from([3, 0, 96, 50, 7, 7]);
      // ordinary logits, and rows far apart in scale (stability: no overflow, no log(0))
      const cases = [tf.randomNormal([6, 97], 0, 3, "float32", 11), tf.randomNormal([6, 97], 0, 3, "float32", 12).mul(tf.tensor2d([[1], [100], [1], [1000], [1], [1]]))];
      for (const logits of cases as tf.Tensor2D[]) {
        const fused = lossAndGrad((x) => softmaxCrossEntropy(x, labels), logits);
        const plain = lossAndGrad((x) => maskedCrossEntropy(x, tf.tensor1d(labels, "int32")), logits);
        assert.ok(Number.isFinite(fused.loss));
        assert.ok(Math.abs(fused.loss - plain.loss) <= 1e-5 * Math.max(1, Math.abs(plain.loss)), `${fused.loss} vs ${plain.loss}`);
        assert.ok(maxAbsDiff(fused.grad, plain.grad) < 1e-6, `gradient differs by ${maxAbsDiff(fused.grad, plain.grad)}`);
        logits.dispose();
      }
    } finally {
      registerXentGradKernel();
    }
  });
}

for (const [name, head] of [["headCrossEntropy", headCrossEntropy], ["headCrossEntropyEager", headCrossEntropyEager]] as const) {
  test(`${name} in blocks of rows = the plain loss of hidden @ weight, value and both gradients (of 3 * loss)`, () => {
    const hidden = tf.randomNormal([10, 12], 0, 1, "float32", 21) as tf.Tensor2D;
    const weight = tf.randomNormal([12, 97], 0, 1, "float32", 22) as tf.Tensor2D;
    const labels = Int32Array.from([1, 5, 96, 0, 33, 33, 7, 80, 2, 64]);
    // 3 * loss: the gradient must scale with the dy that reaches the loss, not assume 1
    const plainLoss = (h: tf.Tensor, w: tf.Tensor) => tf.mul(maskedCrossEntropy(tf.matMul(h, w), tf.tensor1d(labels, "int32")), 3);
    const plain = tf.valueAndGrads(plainLoss)([hidden, weight]);
    for (const rows of [3, 4, 10, 128]) {
      const before = tf.memory().numTensors;
      const got = tf.valueAndGrads((h: tf.Tensor, w: tf.Tensor) => tf.mul(head(h as tf.Tensor2D, w as tf.Tensor2D, labels, rows), 3))([hidden, weight]);
      assert.ok(Math.abs(got.value.dataSync()[0] - plain.value.dataSync()[0]) < 3e-5, `blocks of ${rows}: loss`);
      got.grads.forEach((g, i) => {
        const d = maxAbsDiff(g.dataSync(), plain.grads[i].dataSync());
        assert.ok(d < 3e-5, `blocks of ${rows}: ${i === 0 ? "dHidden" : "dWeight"} differs by ${d}`);
      });
      tf.dispose([got.value, ...got.grads]);
      assert.equal(tf.memory().numTensors, before, `blocks of ${rows}: leaked tensors`);
    }
    // without a gradient the forward pass leaks nothing either
    const before = tf.memory().numTensors;
    head(hidden, weight, labels, 4).dispose();
    assert.equal(tf.memory().numTensors, before, "forward only: leaked tensors");
    tf.dispose([hidden, weight, plain.value, ...plain.grads]);
  });
}

test("calcLossBatchFused = calcLossBatch on a GPT with padding targets: loss and every parameter gradient", () => {
  const model = new GPTModel(CFG, { seed: 3 });
  const inputs = tf.tensor2d([[5, 6, 7, 8, 9, 10], [11, 12, 13, 96, 96, 96]], undefined, "int32");
  const targets = tf.tensor2d([[6, 7, 8, 9, 10, 96], [12, 13, 96, IGNORE_INDEX, IGNORE_INDEX, IGNORE_INDEX]], undefined, "int32");
  const vars = [...model.params.values()];
  const run = (f: typeof calcLossBatch) => {
    const { value, grads } = tf.variableGrads(() => f(model, inputs, targets, true), vars);
    const out = { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync()) };
    value.dispose();
    tf.dispose(grads);
    return out;
  };
  const plain = run(calcLossBatch);
  const names = [...model.params.keys()];
  for (const eager of [true, false]) {
    HEAD_GRAD.eager = eager; // the head's gradient in the forward pass, or recomputed in the backward pass
    const before = tf.memory().numTensors;
    const fused = run(calcLossBatchFused);
    assert.equal(tf.memory().numTensors, before, `the fused loss leaks tensors (eager ${eager})`);
    assert.ok(Math.abs(fused.loss - plain.loss) < 1e-5, `${fused.loss} vs ${plain.loss}`);
    fused.grads.forEach((g, i) => assert.ok(maxAbsDiff(g, plain.grads[i]) < 1e-5, `eager ${eager}, ${names[i]}: gradient differs by ${maxAbsDiff(g, plain.grads[i])}`));
  }
  HEAD_GRAD.eager = true;
  tf.dispose([inputs, targets]);
  model.dispose();
});

test("calcLossBatchFused refuses what maskedCrossEntropy refuses, naming it", () => {
  const model = new GPTModel(CFG, { seed: 3 });
  const inputs = tf.tensor2d([[1, 2]], undefined, "int32");
  assert.throws(() => calcLossBatchFused(model, inputs, tf.tensor2d([[IGNORE_INDEX, IGNORE_INDEX]], undefined, "int32")), DataError);
  assert.throws(() => calcLossBatchFused(model, inputs, tf.tensor2d([[1, 97]], undefined, "int32")), /target 97 at flat position 1 is outside \[0, 97\)/);
  inputs.dispose();
  model.dispose();
});
