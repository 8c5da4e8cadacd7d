// TensorFlow's own ops through the tfjs-node binding (lib/engine/native-ops.ts): a resource variable writes and
// reads back, a read is not changed by a later update (copy-on-write), and the fused softmax cross-entropy gives
// the loss and gradient of TF.js's ops, alone and inside the trainer's head (COURSE_NATIVE_XENT=0 its twin).
// Skipped where the native engine is not built (fails under COURSE_BACKEND=tensorflow).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { NATIVE_XENT, NativeVariable, nativeSoftmaxXent } from "../lib/engine/native-ops";
import { headCrossEntropyEager } from "../lib/train/fused-loss";
import { maskedCrossEntropy } from "../lib/train/loss";
import { startNativeEngine } from "./helpers/native-engine";

let skip: string | null = null;
before(async () => {
  skip = await startNativeEngine();
});

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, tol = 1e-6): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * Math.max(1, Math.abs(b[i])), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test("a native variable: written, read, freed; a read keeps its values when the variable changes", (t) => {
  if (skip) return t.skip(skip);
  const start = tf.memory().numTensors;
  const x = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
  const v = new NativeVariable(x);
  const before = v.read();
  const y = tf.tensor2d([[7, 8, 9], [10, 11, 12]]);
  v.write(y);
  assert.deepEqual(Array.from(before.dataSync()), [1, 2, 3, 4, 5, 6]);
  const after = v.read();
  assert.deepEqual(Array.from(after.dataSync()), [7, 8, 9, 10, 11, 12]);
  assert.throws(() => v.write(tf.zeros([3, 2])), /expected float32 \[2,3\]/);
  tf.dispose([x, y, before, after]);
  v.dispose();
  assert.equal(tf.memory().numTensors, start + 1); // the zeros above, left to show the error
});

test("TensorFlow's softmax cross-entropy = TF.js's ops: each row's loss and softmax − onehot, extreme logits too", (t) => {
  if (skip) return t.skip(skip);
  const labels = Int32Array.from([3, 0, 96, 50, 7, 7]);
  const scales = tf.tensor2d([[1], [100], [1], [1000], [1], [1]]);
  const logits = tf.tidy(() => tf.mul(tf.randomNormal([6, 97], 0, 3, "float32", 11), scales)) as tf.Tensor2D;
  const native = nativeSoftmaxXent(logits, tf.tensor1d(labels, "int32"));
  assert.ok(native !== null);
  const { value, grad } = tf.valueAndGrad((x: tf.Tensor) => maskedCrossEntropy(x as tf.Tensor2D, tf.tensor1d(labels, "int32")))(logits);
  assertClose([native.loss.sum().dataSync()[0] / 6], value.dataSync(), "loss", 1e-5);
  assertClose(native.grad.div(6).dataSync(), grad.dataSync(), "gradient", 1e-6);
  tf.dispose([logits, scales, native.loss, native.grad, value, grad]);
});

test("the trainer's eager head with TensorFlow's kernel = with TF.js's ops (COURSE_NATIVE_XENT=0)", (t) => {
  if (skip) return t.skip(skip);
  const hidden = tf.randomNormal([300, 24], 0, 1, "float32", 3) as tf.Tensor2D;
  const weight = tf.randomNormal([24, 1001], 0, 0.3, "float32", 4) as tf.Tensor2D;
  const labels = Int32Array.from({ length: 300 }, (_, i) => (i * 37) % 1001);
  const run = () => {
    const { value, grads } = tf.valueAndGrads((h: tf.Tensor, w: tf.Tensor) => headCrossEntropyEager(h as tf.Tensor2D, w as tf.Tensor2D, labels, 128))([hidden, weight]);
    const out = { loss: value.dataSync()[0], dh: grads[0].dataSync(), dw: grads[1].dataSync() };
    tf.dispose([value, ...grads]);
    return out;
  };
  const start = tf.memory().numTensors;
  const native = run();
  assert.equal(tf.memory().numTensors, start);
  NATIVE_XENT.on = false;
  let plain: ReturnType<typeof run>;
  try {
    plain = run();
  } finally {
    NATIVE_XENT.on = true;
  }
  assertClose([native.loss], [plain.loss], "loss", 1e-6);
  assertClose(native.dh, plain.dh, "dHidden", 1e-5);
  assertClose(native.dw, plain.dw, "dWeight", 1e-5);
  tf.dispose([hidden, weight]);
});
