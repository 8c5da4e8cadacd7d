// The GPT model: configs, parameter counts as the book prints them, shapes, causality,
// dropout only in training, seeding, and no tensor leaks in forward or a gradient step.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { ConfigError, DataError } from "../lib/core/errors";
import { GPTConfig, MODEL_CONFIGS, TINY, resolveModelConfig, validateConfig } from "../lib/model/config";
import { GPTModel, countParams, formatParamSummary } from "../lib/model/gpt";
import { maskedCrossEntropy } from "../lib/train/loss";
import { IGNORE_INDEX } from "../lib/data/collate";

// the style guide's tiny test config
const TEST_CFG: GPTConfig = { vocabSize: 10, contextLength: 8, embDim: 4, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };

before(async () => {
  await initEngine({ log: () => {} });
});

const ids = (rows: number[][]) => tf.tensor2d(rows, undefined, "int32");

test("resolveModelConfig: book names, short names, case; unknown names list the choices", () => {
  assert.equal(resolveModelConfig("gpt2-medium (355M)").embDim, 1024);
  assert.equal(resolveModelConfig("gpt2-medium").nLayers, 24);
  assert.equal(resolveModelConfig("GPT2-XL").nHeads, 25);
  assert.equal(resolveModelConfig("gpt2").embDim, 768);
  assert.deepEqual(resolveModelConfig("tiny"), TINY);
  // a copy: changing it does not change the table
  resolveModelConfig("tiny").dropRate = 0.5;
  assert.equal(MODEL_CONFIGS.tiny.dropRate, 0);
  assert.throws(() => resolveModelConfig("gpt3"), ConfigError);
  assert.throws(() => resolveModelConfig("gpt3"), /unknown model "gpt3"; choose one of: .*"gpt2-small".*"gpt2-medium \(355M\)".*"tiny"/);
});

test("the book's sizes: emb/layers/heads, vocab 50257, context 1024, qkv bias, no dropout", () => {
  const want: Record<string, [number, number, number]> = {
    "gpt2-small (124M)": [768, 12, 12],
    "gpt2-medium (355M)": [1024, 24, 16],
    "gpt2-large (774M)": [1280, 36, 20],
    "gpt2-xl (1558M)": [1600, 48, 25],
    tiny: [128, 2, 4],
  };
  for (const [name, [emb, layers, heads]] of Object.entries(want)) {
    const c = MODEL_CONFIGS[name];
    assert.deepEqual([c.embDim, c.nLayers, c.nHeads], [emb, layers, heads], name);
    assert.deepEqual([c.vocabSize, c.contextLength, c.qkvBias, c.dropRate], [50257, 1024, true, 0], name);
  }
});

test("validateConfig names the bad field", () => {
  assert.throws(() => validateConfig({ ...TEST_CFG, embDim: 5 }), /embDim 5 is not divisible by nHeads 2/);
  assert.throws(() => validateConfig({ ...TEST_CFG, nLayers: 0 }), /nLayers must be a positive integer/);
  assert.throws(() => validateConfig({ ...TEST_CFG, dropRate: 1 }), /dropRate/);
  assert.throws(() => new GPTModel({ ...TEST_CFG, vocabSize: 2.5 }), ConfigError);
});

test("parameter counts are the book's (chapter 4 has qkv_bias=False)", () => {
  const noBias = (name: string) => ({ ...MODEL_CONFIGS[name], qkvBias: false });
  assert.equal(
    formatParamSummary(noBias("gpt2-small (124M)")),
    [
      "Total number of parameters: 163,009,536",
      "Number of trainable parameters considering weight tying: 124,412,160",
      "Total size of the model: 621.83 MB",
    ].join("\n"),
  );
  // the book's exercise 4.1 figures for the larger models
  assert.equal(countParams(noBias("gpt2-medium (355M)")), 406_212_608);
  assert.equal(countParams(noBias("gpt2-large (774M)")), 838_220_800);
  assert.equal(countParams(noBias("gpt2-xl (1558M)")), 1_637_792_000);
  // with the qkv biases that GPT-2's checkpoints carry
  assert.equal(countParams(MODEL_CONFIGS["gpt2-small (124M)"]), 163_037_184);
});

test("numParams of a built model equals the count from its config", () => {
  for (const cfg of [TEST_CFG, { ...TEST_CFG, qkvBias: false }, TINY]) {
    const model = new GPTModel(cfg, { init: "zeros" });
    assert.equal(model.numParams(), countParams(cfg));
    model.dispose();
  }
});

test("forward: (B, T) ids -> (B, T, V) logits; too long or wrong rank is an error", () => {
  const model = new GPTModel(TEST_CFG);
  const x = ids([[1, 2, 3], [4, 5, 6]]);
  const y = model.forward(x);
  assert.deepEqual(y.shape, [2, 3, 10]);
  assert.equal(y.dtype, "float32");
  assert.ok(Array.from(y.dataSync()).every(Number.isFinite));
  assert.throws(() => model.forward(ids([[0, 1, 2, 3, 4, 5, 6, 7, 8]])), /9 tokens exceeds the context length 8/);
  assert.throws(() => model.forward(tf.tensor1d([1, 2], "int32") as unknown as tf.Tensor2D), DataError);
  tf.dispose([x, y]);
  model.dispose();
});

test("causal: a token's logits do not depend on the tokens after it", () => {
  const model = new GPTModel(TEST_CFG, { seed: 3 });
  const [a, b] = tf.tidy(() => [
    model.forward(ids([[1, 2, 3, 4, 5]])).arraySync() as number[][][],
    model.forward(ids([[1, 2, 3, 9, 0]])).arraySync() as number[][][],
  ]);
  for (let t = 0; t < 3; t++) {
    for (let v = 0; v < 10; v++) assert.ok(Math.abs(a[0][t][v] - b[0][t][v]) < 1e-6, `position ${t}`);
  }
  // …and the later positions do see the change
  assert.ok(a[0][3].some((x, v) => Math.abs(x - b[0][3][v]) > 1e-4));
  model.dispose();
});

test("a batch row gives the same logits as the row alone", () => {
  const model = new GPTModel(TEST_CFG, { seed: 4 });
  const [batch, alone] = tf.tidy(() => [
    model.forward(ids([[1, 2, 3], [7, 8, 9]])).arraySync() as number[][][],
    model.forward(ids([[7, 8, 9]])).arraySync() as number[][][],
  ]);
  batch[1].flat().forEach((x, i) => assert.ok(Math.abs(x - alone[0].flat()[i]) < 1e-5));
  model.dispose();
});

test("seeding: the same seed builds the same weights, another seed other weights", () => {
  const sum = (m: GPTModel) => tf.tidy(() => m.param("blocks.1.ff.fc1.weight").abs().sum().dataSync()[0]);
  const [a, b, c] = [new GPTModel(TEST_CFG, { seed: 7 }), new GPTModel(TEST_CFG, { seed: 7 }), new GPTModel(TEST_CFG, { seed: 8 })];
  assert.equal(sum(a), sum(b));
  assert.notEqual(sum(a), sum(c));
  assert.throws(() => a.param("blocks.9.nope"), /no parameter named "blocks.9.nope"/);
  [a, b, c].forEach((m) => m.dispose());
});

test("dropout acts only when training, and repeats for a seed", () => {
  const cfg = { ...TEST_CFG, dropRate: 0.5 };
  const [m1, m2] = [new GPTModel(cfg, { seed: 5 }), new GPTModel(cfg, { seed: 5 })];
  const x = ids([[1, 2, 3, 4]]);
  const run = (m: GPTModel, training: boolean) => tf.tidy(() => Array.from(m.forward(x, training).dataSync()));
  const evalA = run(m1, false);
  assert.deepEqual(run(m1, false), evalA); // eval: deterministic, no dropout
  const trainA = run(m1, true);
  assert.ok(trainA.some((v, i) => Math.abs(v - evalA[i]) > 1e-4), "training output should differ from eval");
  assert.notDeepEqual(run(m1, true), trainA); // a fresh mask each call
  assert.deepEqual(run(m2, true), trainA); // same seed, same masks
  x.dispose();
  [m1, m2].forEach((m) => m.dispose());
});

test("no tensor leaks: forward in eval and training, loss with gradients", () => {
  const model = new GPTModel({ ...TEST_CFG, dropRate: 0.1 });
  const x = ids([[1, 2, 3], [4, 5, 6]]);
  const y = ids([[2, 3, IGNORE_INDEX], [5, 6, 7]]);
  for (const training of [false, true]) {
    const before = tf.memory().numTensors;
    const logits = model.forward(x, training);
    logits.dispose();
    assert.equal(tf.memory().numTensors, before, `forward(training=${training})`);
  }
  const before = tf.memory().numTensors;
  const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(x, true), y));
  assert.equal(Object.keys(grads).length, model.params.size);
  tf.dispose([value, ...Object.values(grads)]);
  assert.equal(tf.memory().numTensors, before, "loss + variableGrads");
  const before2 = tf.memory().numTensors;
  model.dispose();
  assert.equal(tf.memory().numTensors, before2 - countParamTensors(TEST_CFG));
  tf.dispose([x, y]);
});

function countParamTensors(cfg: GPTConfig): number {
  // tok, pos, final norm (2), head + per block: 2 norms (4), q/k/v weight (+bias), out proj (2), fc1 (2), fc2 (2)
  return 5 + cfg.nLayers * (4 + 3 * (cfg.qkvBias ? 2 : 1) + 6);
}
