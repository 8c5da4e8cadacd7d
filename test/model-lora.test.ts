// LoRA (lib/model/lora.ts) against the PyTorch reference (test/reference/lora_reference.py, fixture
// test/fixtures/lora-golden.json): the same base weights and the same A; logits at B = 0 equal the
// base model's, the gradients of every A and B equal torch's (at B = 0 and at a non-zero B, with the
// plain and the fused loss), a few AdamW steps equal, and the trainable counts equal torch's — the
// book's 7,898,384 for gpt2-medium at rank 16 among them. No gradients or moments for frozen weights.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTConfig, GPT2_MEDIUM } from "../lib/model/config";
import { GPTModel, countParams } from "../lib/model/gpt";
import { countLoRAParams, kaimingUniformBound, linearShapes } from "../lib/model/lora";
import { AdamW } from "../lib/train/adamw";
import { calcLossBatch } from "../lib/train/loss";
import { calcLossBatchFused } from "../lib/train/fused-loss";
import { trainStep } from "../lib/train/train";
import { deterministicModel } from "./helpers/deterministic-weights";

interface Golden {
  config: GPTConfig;
  rank: number;
  alpha: number;
  lr: number;
  weightDecay: number;
  inputs: number[][];
  targets: number[][];
  targetLayers: string[];
  shapes: Record<string, number[]>;
  kaimingBound: Record<string, number>;
  initial: Record<string, number[]>;
  baseLogits: number[];
  logits0: number[];
  loss0: number;
  grads0: Record<string, number[]>;
  bNonZero: Record<string, number[]>;
  logits1: number[];
  loss1: number;
  grads1: Record<string, number[]>;
  steps: { loss: number; after: Record<string, number[]> }[];
  finalLoss: number;
  finalLogits: number[];
  counts: { smallBefore: number; smallLoRA: number; mediumBefore: number; mediumLoRA: number; mediumRank: number };
}
const golden: Golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "lora-golden.json"), "utf8"));

before(async () => {
  await initEngine({ log: () => {} });
});

function close(actual: ArrayLike<number>, expected: number[], what: string, tol = 1e-5): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const bound = tol + tol * Math.abs(expected[i]);
    assert.ok(Math.abs(actual[i] - expected[i]) <= bound, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

/** The fixture's base model with LoRA applied and torch's A (and optionally B) copied in. */
function loraModel(b?: Record<string, number[]>): GPTModel {
  const model = deterministicModel(golden.config);
  const adapter = model.applyLoRA({ rank: golden.rank, alpha: golden.alpha });
  for (const [name, v] of adapter.params) {
    const values = name.endsWith(".B") && b ? b[name] : golden.initial[name];
    tf.tidy(() => v.assign(tf.tensor(values, v.shape)));
  }
  return model;
}

const batch = () => ({ inputs: tf.tensor2d(golden.inputs, undefined, "int32"), targets: tf.tensor2d(golden.targets, undefined, "int32") });

test("LoRA wraps the same layers as the reference, with torch's shapes and kaiming-uniform bound", () => {
  const model = deterministicModel(golden.config);
  const adapter = model.applyLoRA({ rank: golden.rank, alpha: golden.alpha });
  assert.deepEqual(adapter.targets, golden.targetLayers);
  assert.deepEqual([...linearShapes(golden.config).keys()], golden.targetLayers);
  for (const [name, v] of adapter.params) assert.deepEqual(v.shape, golden.shapes[name], name);
  for (const [name, bound] of Object.entries(golden.kaimingBound)) {
    const ours = kaimingUniformBound(golden.shapes[name] as [number, number]);
    assert.ok(Math.abs(ours - bound) < 1e-12, `${name}: bound ${ours} vs torch ${bound}`);
    const a = adapter.params.get(name)!.dataSync();
    assert.ok(a.every((x) => Math.abs(x) <= bound), `${name}: our A leaves ±${bound}`);
    assert.ok(Math.max(...a.map(Math.abs)) > 0.5 * bound, `${name}: our A does not spread over ±${bound}`);
    assert.ok(adapter.params.get(name.replace(/A$/, "B"))!.dataSync().every((x) => x === 0), `${name}: B is not zero`);
  }
  model.dispose();
});

test("at B = 0 the LoRA model's logits are the base model's (and torch's)", () => {
  const model = loraModel();
  const { inputs, targets } = batch();
  const logits = model.forward(inputs);
  close(logits.dataSync(), golden.logits0, "logits at B = 0", 1e-4);
  close(logits.dataSync(), golden.baseLogits, "base logits", 1e-4);
  tf.dispose([logits, inputs, targets]);
  model.dispose();
});

for (const [label, b, loss, logits, torchGrads] of [
  ["B = 0", undefined, () => golden.loss0, () => golden.logits0, () => golden.grads0],
  ["a non-zero B", golden.bNonZero, () => golden.loss1, () => golden.logits1, () => golden.grads1],
] as const) {
  for (const [impl, lossBatch] of [["plain", calcLossBatch], ["fused", calcLossBatchFused]] as const) {
    test(`gradients of every A and B equal torch's at ${label} (${impl} loss); frozen weights get none`, () => {
      const model = loraModel(b);
      const { inputs, targets } = batch();
      const out = model.forward(inputs);
      close(out.dataSync(), logits(), `logits at ${label}`, 1e-4);
      const trainable = model.trainableParams();
      assert.equal(trainable.size, 2 * golden.targetLayers.length);
      const names = [...trainable.keys()];
      const vars = names.map((n) => trainable.get(n)!);
      const before = tf.memory().numTensors;
      const { value, grads } = tf.variableGrads(() => lossBatch(model, inputs, targets, true), vars);
      assert.equal(Object.keys(grads).length, names.length, "a gradient per A and B, none for frozen weights");
      assert.ok(Math.abs(value.dataSync()[0] - loss()) < 1e-5, `loss ${value.dataSync()[0]} vs torch ${loss()}`);
      names.forEach((n, i) => close(grads[vars[i].name].dataSync(), torchGrads()[n], `${impl} d${n}`, 1e-4));
      // every variable of the model, frozen included: tf.variableGrads without a list takes the trainable ones
      const all = tf.variableGrads(() => lossBatch(model, inputs, targets, true));
      const frozen = [...model.params.values()].filter((v) => all.grads[v.name] !== undefined);
      assert.equal(frozen.length, 0, "frozen weights are not trainable variables");
      tf.dispose([value, all.value]);
      tf.dispose(grads);
      tf.dispose(all.grads);
      assert.equal(tf.memory().numTensors, before, "the gradient computation leaked tensors");
      tf.dispose([out, inputs, targets]);
      model.dispose();
    });
  }
}

test("AdamW on A and B follows torch.optim.AdamW step by step; the base weights do not move", async () => {
  for (const impl of ["plain", "fused"] as const) {
    const model = loraModel();
    const { inputs, targets } = batch();
    const frozenBefore = [...model.params].map(([n, v]) => [n, v.dataSync().slice()] as const);
    const opt = new AdamW(model.trainableParams(), { lr: golden.lr, weightDecay: golden.weightDecay });
    for (const [s, step] of golden.steps.entries()) {
      const loss = await trainStep(model, opt, inputs, targets, s, impl);
      assert.ok(Math.abs(loss - step.loss) < 1e-5, `${impl} step ${s + 1}: loss ${loss} vs torch ${step.loss}`);
      for (const [name, v] of model.trainableParams()) close(v.dataSync(), step.after[name], `${impl} step ${s + 1} ${name}`, 1e-4);
    }
    const state = await opt.exportState();
    assert.deepEqual(Object.keys(state.m).sort(), [...model.trainableParams().keys()].sort(), "moments only for A and B");
    for (const [n, before] of frozenBefore) assert.deepEqual(model.param(n).dataSync(), before, `${n} moved`);
    const logits = model.forward(inputs);
    close(logits.dataSync(), golden.finalLogits, `${impl} logits after ${golden.steps.length} steps`, 1e-4);
    tf.dispose([logits, inputs, targets]);
    opt.dispose();
    model.dispose();
  }
});

test("merging folds (alpha/r)·A@B into the weights: the same logits from a plain model", async () => {
  const model = loraModel(golden.bNonZero);
  const { inputs, targets } = batch();
  const withLoRA = model.forward(inputs);
  const merged = await model.mergedValues("blocks.0.ff.fc1.weight");
  model.mergeLoRA();
  assert.equal(model.lora, null);
  assert.deepEqual(model.param("blocks.0.ff.fc1.weight").dataSync(), merged);
  const plain = model.forward(inputs);
  close(plain.dataSync(), golden.logits1, "merged logits", 1e-4);
  close(plain.dataSync(), Array.from(withLoRA.dataSync()), "merged vs LoRA logits", 1e-5);
  assert.equal(model.trainableParams(), model.params);
  tf.dispose([withLoRA, plain, inputs, targets]);
  model.dispose();
});

test("trainable counts equal torch's: the small config, and gpt2-medium at rank 16 = 7,898,384 (from the config alone)", () => {
  const c = golden.counts;
  assert.equal(countParams(golden.config), c.smallBefore);
  assert.equal(countLoRAParams(golden.config, golden.rank), c.smallLoRA);
  const model = deterministicModel(golden.config);
  assert.equal(model.numTrainableParams(), c.smallBefore);
  model.applyLoRA({ rank: golden.rank, alpha: golden.alpha });
  assert.equal(model.numTrainableParams(), c.smallLoRA);
  model.dispose();
  assert.equal(countParams(GPT2_MEDIUM), c.mediumBefore);
  assert.equal(c.mediumBefore, 406_286_336);
  assert.equal(countLoRAParams(GPT2_MEDIUM, c.mediumRank), c.mediumLoRA);
  assert.equal(c.mediumLoRA, 7_898_384);
});

test("bad LoRA settings are one-line ConfigErrors naming the field", () => {
  const model = deterministicModel(golden.config);
  assert.throws(() => model.applyLoRA({ rank: 0, alpha: 16 }), /LoRA: rank must be an integer >= 1, got 0/);
  assert.throws(() => model.applyLoRA({ rank: 2, alpha: -1 }), /LoRA: alpha must be a number > 0, got -1/);
  assert.throws(() => model.applyLoRA({ rank: 2, alpha: 1, targets: ["blocks.9.ff.fc1"] }), /no linear layer named "blocks.9.ff.fc1"/);
  model.applyLoRA({ rank: 2, alpha: 1 });
  assert.throws(() => model.applyLoRA({ rank: 2, alpha: 1 }), /already has a LoRA adapter/);
  model.dispose();
});
