// The fused GELU, LayerNorm and linear layer (lib/model/fused-layers.ts) give the plain layers' values exactly and
// their gradients to float32 rounding, alone on awkward shapes and inside a whole model's training step; and the
// step holds fewer bytes with them (COURSE_FUSED_LAYERS=0 switches them off).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { leanVariableGrads } from "../lib/engine/lean-gradients";
import { FUSED_LAYERS, geluFused, layerNormFused, linearFused } from "../lib/model/fused-layers";
import { maskedSoftmax, mergeHeads, residualAdd, splitHeads } from "../lib/model/fused-attention";
import { gelu } from "../lib/model/feedforward";
import { GPTConfig } from "../lib/model/config";
import { calcLossBatch } from "../lib/train/loss";
import { calcLossBatchFused } from "../lib/train/fused-loss";
import { deterministicModel } from "./helpers/deterministic-weights";
import { peakBufferBytes } from "./helpers/buffer-peak";

before(async () => {
  await initEngine({ log: () => {} });
});

function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string, rel = 1e-4, abs = 1e-6): void {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= abs + rel * Math.abs(b[i]), `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

/** Value and the gradients of sum(f(inputs) * w) for a fixed random w, in every input. */
function valueAndGrads(f: (...xs: tf.Tensor[]) => tf.Tensor, inputs: tf.Tensor[]): { value: Float32Array; grads: Float32Array[] } {
  return tf.tidy(() => {
    const w = tf.randomNormal(f(...inputs).shape, 0, 1, "float32", 5);
    const { value, grads } = tf.valueAndGrads((...xs: tf.Tensor[]) => tf.sum(tf.mul(f(...xs), w)))(inputs);
    value.dispose();
    return { value: f(...inputs).dataSync() as Float32Array, grads: grads.map((g) => g.dataSync() as Float32Array) };
  });
}

function plainLayerNorm(x: tf.Tensor, scale: tf.Tensor, shift: tf.Tensor): tf.Tensor {
  const centered = tf.sub(x, tf.mean(x, -1, true));
  return tf.add(tf.mul(tf.div(centered, tf.sqrt(tf.add(tf.mean(tf.square(centered), -1, true), 1e-5))), scale), shift);
}

const cases: [string, (...xs: tf.Tensor[]) => tf.Tensor, (...xs: tf.Tensor[]) => tf.Tensor, () => tf.Tensor[]][] = [
  ["GELU on (3, 7, 13), values from -6 to 6", (x) => geluFused(x), (x) => gelu(x), () => [tf.randomUniform([3, 7, 13], -6, 6, "float32", 1)]],
  ["LayerNorm on (2, 5, 11)", (x, s, b) => layerNormFused(x, s as tf.Tensor1D, b as tf.Tensor1D, 1e-5), plainLayerNorm,
    () => [tf.randomNormal([2, 5, 11], 0.3, 2, "float32", 2), tf.randomNormal([11], 1, 0.2, "float32", 3), tf.randomNormal([11], 0, 0.1, "float32", 4)]],
  ["linear (9, 6) @ (6, 5) + (5,)", (x, w, b) => linearFused(x as tf.Tensor2D, w as tf.Tensor2D, b as tf.Tensor1D), (x, w, b) => tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), b),
    () => [tf.randomNormal([9, 6], 0, 1, "float32", 6), tf.randomNormal([6, 5], 0, 1, "float32", 7), tf.randomNormal([5], 0, 1, "float32", 8)]],
  ["linear on (2, 3, 6) rows", (x, w, b) => linearFused(x, w as tf.Tensor2D, b as tf.Tensor1D), (x, w, b) => tf.add(tf.matMul(x.reshape([-1, 6]), w as tf.Tensor2D), b).reshape([2, 3, 5]),
    () => [tf.randomNormal([2, 3, 6], 0, 1, "float32", 9), tf.randomNormal([6, 5], 0, 1, "float32", 10), tf.randomNormal([5], 0, 1, "float32", 11)]],
  ["split heads (2, 5, 12) -> (2, 3, 5, 4)", (y) => splitHeads(y, 3), (y) => y.reshape([2, 5, 3, 4]).transpose([0, 2, 1, 3]), () => [tf.randomNormal([2, 5, 12], 0, 1, "float32", 12)]],
  ["merge heads (2, 3, 5, 4) -> (2, 5, 12)", (x) => mergeHeads(x), (x) => x.transpose([0, 2, 1, 3]).reshape([2, 5, 12]), () => [tf.randomNormal([2, 3, 5, 4], 0, 1, "float32", 13)]],
  ["masked softmax with the causal mask", (s) => maskedSoftmax(s, 2, causal(5)), (s) => tf.softmax(tf.add(tf.div(s, 2), causal(5)), -1), () => [tf.randomNormal([2, 3, 5, 5], 0, 2, "float32", 14)]],
  ["masked softmax, no mask", (s) => maskedSoftmax(s, 4, null), (s) => tf.softmax(tf.div(s, 4), -1), () => [tf.randomNormal([2, 3, 1, 7], 0, 2, "float32", 15)]],
  ["residual addition", (a, b) => residualAdd(a, b), (a, b) => tf.add(a, b), () => [tf.randomNormal([2, 5, 12], 0, 1, "float32", 16), tf.randomNormal([2, 5, 12], 0, 1, "float32", 17)]],
];

/** (T, T): 0 on and below the diagonal, -inf above (attention.ts's mask). */
function causal(t: number): tf.Tensor {
  return tf.tidy(() => tf.where(tf.greaterEqual(tf.range(0, t, 1, "int32").reshape([t, 1]), tf.range(0, t, 1, "int32").reshape([1, t])), tf.zeros([t, t]), tf.fill([t, t], -Infinity)));
}

for (const [what, fused, plain, make] of cases) {
  test(`fused ${what}: the plain values exactly, the plain gradients to rounding, no leaks`, () => {
    const inputs = make();
    const start = tf.memory().numTensors;
    const a = valueAndGrads(fused, inputs);
    assert.equal(tf.memory().numTensors, start);
    const b = valueAndGrads(plain, inputs);
    assert.deepEqual(a.value, b.value);
    a.grads.forEach((g, i) => assertClose(g, b.grads[i], `d input ${i}`));
    tf.dispose(inputs);
  });
}

const cfg: GPTConfig = { vocabSize: 53, contextLength: 16, embDim: 24, nHeads: 3, nLayers: 2, dropRate: 0.1, qkvBias: true };
const inputs = [[3, 7, 1, 18, 5, 0, 9, 44, 2], [11, 2, 9, 4, 4, 16, 22, 50256 % 53, 8]];
const targets = [[7, 1, 18, 5, 0, 9, 44, 2, 6], [2, 9, 4, 16, 22, 8, -100, -100, -100]];

function step(lossBatch: typeof calcLossBatch) {
  const model = deterministicModel(cfg);
  const x = tf.tensor2d(inputs, undefined, "int32");
  const y = tf.tensor2d(targets, undefined, "int32");
  const vars = [...model.params.values()];
  const { value, grads } = leanVariableGrads(() => lossBatch(model, x, y, true), vars);
  const out = { loss: value.dataSync()[0], grads: vars.map((v) => grads[v.name].dataSync() as Float32Array), names: [...model.params.keys()] };
  tf.dispose([value, x, y, ...Object.values(grads)]);
  model.dispose();
  return out;
}

for (const [impl, lossBatch] of [["plain", calcLossBatch], ["fused", calcLossBatchFused]] as const) {
  test(`a model with the fused layers: the plain layers' loss and every gradient (${impl} loss, dropout 0.1)`, () => {
    const fused = step(lossBatch);
    FUSED_LAYERS.on = false; // COURSE_FUSED_LAYERS=0
    let plain: ReturnType<typeof step>;
    try {
      plain = step(lossBatch);
    } finally {
      FUSED_LAYERS.on = true;
    }
    assert.equal(fused.loss, plain.loss);
    fused.grads.forEach((g, i) => assertClose(g, plain.grads[i], `d${fused.names[i]}`, 1e-3, 1e-6));
  });
}

test("a training step holds fewer bytes with the fused layers", async () => {
  const big: GPTConfig = { ...cfg, contextLength: 64, embDim: 64, nHeads: 4, nLayers: 3, dropRate: 0 };
  const model = deterministicModel(big);
  const x = tf.randomUniform([8, 64], 0, 53, "int32", 9) as tf.Tensor2D;
  const vars = [...model.params.values()];
  const peak = () =>
    peakBufferBytes(() => {
      const { value, grads } = leanVariableGrads(() => calcLossBatchFused(model, x, x, true), vars);
      tf.dispose([value, ...Object.values(grads)]);
    });
  const fused = await peak();
  FUSED_LAYERS.on = false;
  let plain: number;
  try {
    plain = await peak();
  } finally {
    FUSED_LAYERS.on = true;
  }
  assert.ok(fused < 0.75 * plain, `${fused} bytes with the fused layers, ${plain} without`);
  tf.dispose(x);
  model.dispose();
});
