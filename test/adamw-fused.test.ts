// The fused AdamW of the native engine (lib/train/adamw-fused.ts: TensorFlow's ResourceApplyAdam, in place)
// follows torch.optim.AdamW (the same fixture as train-adamw.test.ts), stays within a few float32 roundings of
// its plain twin (adamw.ts) over many steps, resumes from an exported state, notices a parameter assigned from
// outside, and leaks nothing. Skipped where the native engine is not built (fails under COURSE_BACKEND=tensorflow).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { AdamW } from "../lib/train/adamw";
import { createAdamW, FUSED_ADAMW, FusedAdamW } from "../lib/train/adamw-fused";
import { ConfigError } from "../lib/core/errors";
import { startNativeEngine } from "./helpers/native-engine";
import { peakBufferBytes } from "./helpers/buffer-peak";
import { GPTModel } from "../lib/model/gpt";
import { trainStep, UPDATE_IN_BACKWARD } from "../lib/train/step";

interface Fixture {
  shapes: Record<string, number[]>;
  initial: Record<string, number[]>;
  grads: Record<string, number[]>[];
  cases: { options: { lr: number; betas: [number, number]; eps: number; weight_decay: number }; after: Record<string, number[]>[] }[];
}
const fixture: Fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "adamw_reference.json"), "utf8"));

let skip: string | null = null;
before(async () => {
  skip = await startNativeEngine();
});

const makeParams = () => new Map(Object.entries(fixture.shapes).map(([n, shape]) => [n, tf.variable(tf.tensor(fixture.initial[n], shape), true)]));
const gradsAt = (s: number) => new Map(Object.entries(fixture.shapes).map(([n, shape]) => [n, tf.tensor(fixture.grads[s][n], shape)]));
const disposeAll = (m: Map<string, tf.Tensor>) => m.forEach((t) => t.dispose());

function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, what: string, rel = 1e-5, abs = 1e-6): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(Math.abs(actual[i] - expected[i]) <= abs + rel * Math.abs(expected[i]), `${what}[${i}]: ${actual[i]} vs ${expected[i]}`);
  }
}

test("the fused AdamW follows torch.optim.AdamW for every step and setting", (t) => {
  if (skip) return t.skip(skip);
  for (const c of fixture.cases) {
    const params = makeParams();
    const o = c.options;
    const opt = new FusedAdamW(params, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay });
    c.after.forEach((expected, s) => {
      const g = gradsAt(s);
      opt.step(g);
      disposeAll(g);
      for (const [name, p] of params) assertClose(p.dataSync(), expected[name], `lr=${o.lr} step ${s + 1} ${name}`);
    });
    opt.dispose();
    disposeAll(params);
  }
});

test("the fused AdamW stays within float32 roundings of the plain one over 20 steps (the book's lr and decay)", (t) => {
  if (skip) return t.skip(skip);
  const shapes: Record<string, number[]> = { w: [64, 33], b: [33], e: [1000, 8] };
  const init = (seed: number) => new Map(Object.entries(shapes).map(([n, s], i) => [n, tf.variable(tf.randomNormal(s, 0, 0.5, "float32", seed + i))]));
  const plainParams = init(1);
  const fusedParams = init(1);
  const opts = { lr: 5e-5, weightDecay: 0.1 };
  const plain = new AdamW(plainParams, opts);
  const fused = new FusedAdamW(fusedParams, opts);
  for (let s = 0; s < 20; s++) {
    // gradients of every scale, some exactly zero (a vocabulary row no batch touched)
    const g = new Map(Object.entries(shapes).map(([n, shape], i) => [n, tf.tidy(() => tf.relu(tf.randomNormal(shape, 0, 10 ** ((s % 5) - 3), "float32", 100 * s + i)))]));
    plain.step(g);
    fused.step(g);
    disposeAll(g);
  }
  for (const [name, p] of plainParams) {
    const start = tf.tidy(() => tf.randomNormal(shapes[name], 0, 0.5, "float32", 1 + Object.keys(shapes).indexOf(name)));
    const moved = tf.tidy(() => tf.sub(p, start).abs().max().dataSync()[0]);
    assert.ok(moved > 5e-4, `${name} barely moved (${moved}): the comparison would say nothing`);
    // the parameters moved by ~1e-3; the two differ by a few roundings (a unit in the last place of ~1 is 1.2e-7)
    assertClose(fusedParams.get(name)!.dataSync(), p.dataSync(), `${name} after 20 steps`, 4e-7, 1e-8);
    start.dispose();
  }
  [plain, fused].forEach((o) => o.dispose());
  disposeAll(plainParams);
  disposeAll(fusedParams);
});

test("the fused AdamW resumes from an exported state, and takes in a parameter assigned from outside", async (t) => {
  if (skip) return t.skip(skip);
  const o = fixture.cases[0].options;
  const opts = { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay };
  const params = makeParams();
  const first = new FusedAdamW(params, opts);
  for (const s of [0, 1]) {
    const g = gradsAt(s);
    first.step(g);
    disposeAll(g);
  }
  const state = await first.exportState();
  first.dispose();
  const second = new FusedAdamW(params, opts);
  second.importState(state);
  for (const s of [2, 3]) {
    const g = gradsAt(s);
    second.step(g);
    disposeAll(g);
  }
  for (const [name, p] of params) assertClose(p.dataSync(), fixture.cases[0].after[3][name], `resumed ${name}`);
  // a parameter set from outside (a checkpoint loaded) is what the next step updates
  const [name, p] = [...params][0];
  p.assign(tf.zerosLike(p));
  const g = gradsAt(0);
  second.step(g);
  disposeAll(g);
  assert.ok(p.dataSync().every((x) => Math.abs(x) < 1e-2), `${name} was not taken from the assigned zeros`);
  second.dispose();
  disposeAll(params);
});

test("the fused AdamW leaks no tensors, frees its variables, refuses bad input; createAdamW and its switch", (t) => {
  if (skip) return t.skip(skip);
  const params = makeParams();
  const opt = createAdamW(params, { lr: 1e-3, weightDecay: 0.1 });
  assert.ok(opt instanceof FusedAdamW);
  const start = tf.memory().numTensors;
  const g = gradsAt(0);
  opt.step(g); // makes the variables: three handles a parameter
  assert.equal(tf.memory().numTensors, start + g.size + 3 * params.size);
  for (let i = 0; i < 3; i++) opt.step(g);
  assert.equal(tf.memory().numTensors, start + g.size + 3 * params.size);
  assert.throws(() => opt.step(new Map([["nope", g.get("b")!]])), ConfigError);
  assert.throws(() => opt.step(new Map([["w", g.get("b")!]])), /shape/);
  assert.throws(() => opt.momentOf("m", "w"), ConfigError);
  opt.dispose();
  assert.equal(tf.memory().numTensors, start + g.size);
  FUSED_ADAMW.on = false; // COURSE_FUSED_ADAMW=0
  try {
    const plain = createAdamW(params);
    assert.ok(!(plain instanceof FusedAdamW));
    plain.dispose();
  } finally {
    FUSED_ADAMW.on = true;
  }
  disposeAll(g);
  disposeAll(params);
});

test("each weight updated during the backward pass: the very weights of a step after it, with fewer bytes held", async (t) => {
  if (skip) return t.skip(skip);
  // weights (and so gradients) well above a short batch's activations, as in GPT-2 fine-tuning
  const cfg = { vocabSize: 2000, contextLength: 32, embDim: 64, nHeads: 4, nLayers: 3, dropRate: 0.1, qkvBias: true };
  const inputs = tf.tensor2d([[3, 7, 1, 1800, 5, 0, 9, 44]], undefined, "int32");
  const targets = tf.tensor2d([[7, 1, 1800, 5, 0, 9, 44, -100]], undefined, "int32");
  const run = async (inBackward: boolean) => {
    UPDATE_IN_BACKWARD.on = inBackward; // COURSE_UPDATE_IN_BACKWARD=0 for false
    try {
      const model = new GPTModel(cfg, { seed: 5 });
      const opt = new FusedAdamW(model.params, { lr: 1e-3, weightDecay: 0.1 });
      await trainStep(model, opt, inputs, targets, 1); // the optimizer's variables are made on the first step
      const losses: number[] = [];
      const peak = await peakBufferBytes(async () => {
        for (let s = 2; s <= 3; s++) losses.push(await trainStep(model, opt, inputs, targets, s));
      });
      const weights = new Map([...model.params].map(([n, v]) => [n, v.dataSync() as Float32Array]));
      opt.dispose();
      model.dispose();
      return { losses, peak, weights };
    } finally {
      UPDATE_IN_BACKWARD.on = true;
    }
  };
  const after = await run(false);
  const during = await run(true);
  assert.deepEqual(during.losses, after.losses);
  for (const [n, w] of after.weights) assert.deepEqual(during.weights.get(n), w, `${n} differs`);
  assert.ok(during.peak < 0.8 * after.peak, `${during.peak} bytes of tensors at the peak, against ${after.peak} after the pass`);
  tf.dispose([inputs, targets]);
});
