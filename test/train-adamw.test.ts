// AdamW matches torch.optim.AdamW step by step (fixture from test/reference/adamw_reference.py),
// resumes exactly from an exported state, and leaks no tensors.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { AdamW } from "../lib/train/adamw";
import { ConfigError } from "../lib/core/errors";

interface Fixture {
  shapes: Record<string, number[]>;
  initial: Record<string, number[]>;
  grads: Record<string, number[]>[];
  cases: { options: { lr: number; betas: [number, number]; eps: number; weight_decay: number }; after: Record<string, number[]>[] }[];
}
const fixture: Fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, "fixtures", "adamw_reference.json"), "utf8"),
);

before(async () => {
  await initEngine({ log: () => {} });
});

function makeParams(): Map<string, tf.Variable> {
  const params = new Map<string, tf.Variable>();
  for (const [name, shape] of Object.entries(fixture.shapes)) {
    params.set(name, tf.variable(tf.tensor(fixture.initial[name], shape), true));
  }
  return params;
}

function gradsAt(step: number): Map<string, tf.Tensor> {
  const g = new Map<string, tf.Tensor>();
  for (const [name, shape] of Object.entries(fixture.shapes)) g.set(name, tf.tensor(fixture.grads[step][name], shape));
  return g;
}

function assertClose(actual: ArrayLike<number>, expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, what);
  for (let i = 0; i < expected.length; i++) {
    const tol = 1e-6 + 1e-5 * Math.abs(expected[i]);
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs torch ${expected[i]}`);
  }
}

const disposeAll = (m: Map<string, tf.Tensor>) => m.forEach((t) => t.dispose());

test("AdamW follows torch.optim.AdamW for every step and setting", () => {
  for (const c of fixture.cases) {
    const params = makeParams();
    const o = c.options;
    const opt = new AdamW(params, { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay });
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

test("weight decay is decoupled: a zero gradient still shrinks the weights by lr*wd", () => {
  const params = new Map([["w", tf.variable(tf.tensor1d([2, -4]))]]);
  const opt = new AdamW(params, { lr: 0.1, weightDecay: 0.5 });
  const g = new Map([["w", tf.zeros([2])]]);
  opt.step(g);
  // m = v = 0, so the Adam part is 0 and only p * (1 - 0.1 * 0.5) remains
  assertClose(params.get("w")!.dataSync(), [1.9, -3.8], "w");
  opt.dispose();
  disposeAll(g);
  disposeAll(params);
});

test("an exported state resumes the same trajectory", async () => {
  const o = fixture.cases[0].options;
  const opts = { lr: o.lr, betas: o.betas, eps: o.eps, weightDecay: o.weight_decay };
  const params = makeParams();
  const first = new AdamW(params, opts);
  for (const s of [0, 1]) {
    const g = gradsAt(s);
    first.step(g);
    disposeAll(g);
  }
  // a JSON round trip, as a checkpoint would do
  const state = await first.exportState();
  first.dispose();
  const json = JSON.parse(JSON.stringify(state, (_k, v) => (v instanceof Float32Array ? Array.from(v) : v)));
  for (const store of [json.m, json.v]) for (const k of Object.keys(store)) store[k].data = Float32Array.from(store[k].data);
  const second = new AdamW(params, opts);
  second.importState(json);
  assert.equal(second.stepCount, 2);
  for (const s of [2, 3]) {
    const g = gradsAt(s);
    second.step(g);
    disposeAll(g);
  }
  for (const [name, p] of params) assertClose(p.dataSync(), fixture.cases[0].after[3][name], `resumed ${name}`);
  second.dispose();
  disposeAll(params);
});

test("a step leaks no tensors, and bad input is a ConfigError", () => {
  const params = makeParams();
  const opt = new AdamW(params, { lr: 1e-3, weightDecay: 0.1 });
  const g = gradsAt(0);
  opt.step(g); // creates the moment buffers
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) opt.step(g);
  assert.equal(tf.memory().numTensors, before);
  assert.throws(() => opt.step(new Map([["nope", g.get("b")!]])), ConfigError);
  assert.throws(() => opt.step(new Map([["w", g.get("b")!]])), /shape/);
  assert.throws(() => new AdamW(params, { lr: NaN }), ConfigError);
  opt.dispose();
  disposeAll(g);
  disposeAll(params);
});
