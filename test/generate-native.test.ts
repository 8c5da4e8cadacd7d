// Generation's one-token steps on libtensorflow's ops called directly (lib/model/native-decode.ts, with
// lib/engine/native-ops.ts's NativeOps) against their plain twin, the model's own cached forward pass: the same
// logits step by step (one prompt, a left-padded batch before and after rows leave, buffers that run out of room;
// the keys and values written in place and handed back to the cache), PyTorch's greedy tokens,
// the same tokens as the plain path, no leaks, and the plain path wherever the fast one does not apply (LoRA,
// switched off). Each raw op against TF.js's own. Skipped where the native engine is not built (fails under
// COURSE_BACKEND=tensorflow).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import type { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { generateIds } from "../lib/generate/generate";
import { cachedDecoder } from "../lib/generate/decoder";
import { NATIVE_DECODE, NativeDecoder, nativeDecodeProblem } from "../lib/model/native-decode";
import { NativeOps } from "../lib/engine/native-ops";
import { deterministicModel } from "./helpers/deterministic-weights";
import { startNativeEngine } from "./helpers/native-engine";

interface Golden {
  config: GPTConfig;
  tiedHead: boolean;
  prompt: number[][];
  greedy: number[][];
}
const load = (name: string): Golden => JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", `gpt-golden-${name}.json`), "utf8"));

let skip: string | null = null;
before(async () => {
  skip = await startNativeEngine();
});

/** Run `f` with the fast path switched as given; counts the one-token steps it took. */
async function withNative<T>(on: boolean, f: () => Promise<T>): Promise<{ value: T; fastSteps: number }> {
  const saved = NATIVE_DECODE.on;
  const logits = NativeDecoder.prototype.logits;
  let fastSteps = 0;
  NATIVE_DECODE.on = on;
  NativeDecoder.prototype.logits = function (...args) {
    fastSteps++;
    return logits.apply(this, args);
  };
  try {
    return { value: await f(), fastSteps };
  } finally {
    NATIVE_DECODE.on = saved;
    NativeDecoder.prototype.logits = logits;
  }
}

/** Feed `steps` (the first a padded prompt batch, then one token a row) to a fresh decoder; each step's logits. */
async function run(model: GPTModel, padding: number[], steps: number[][][], keep: { at: number; rows: number[] } | null, maxLength = 64): Promise<Float32Array[]> {
  const dec = cachedDecoder(model, maxLength);
  dec.setPadding(padding);
  const out: Float32Array[] = [];
  for (let i = 0; i < steps.length; i++) {
    if (keep !== null && i === keep.at) await dec.keepRows(keep.rows);
    out.push((await dec.next(steps[i])).slice());
  }
  dec.reset();
  return out;
}

test("one-token steps: the plain path's logits, one prompt and a left-padded batch, before and after rows leave", async (t) => {
  if (skip) return t.skip(skip);
  const g = load("small");
  for (const qkvBias of [false, true]) {
    const model = deterministicModel({ ...g.config, qkvBias }, { tiedHead: g.tiedHead });
    const prompts = [[5, 9, 2, 7, 1], [3], [8, 8, 4]];
    const width = 5;
    const cases: Array<{ padding: number[]; steps: number[][][]; keep: { at: number; rows: number[] } | null; maxLength?: number }> = [
      { padding: [0], steps: [[prompts[0]], [[4]], [[11]], [[6]], [[2]]], keep: null },
      // buffers of 7 positions for 9: the last steps go the cache's own way
      { padding: [0], steps: [[prompts[0]], [[4]], [[11]], [[6]], [[2]]], keep: null, maxLength: 7 },
      {
        padding: prompts.map((p) => width - p.length),
        steps: [prompts.map((p) => [...new Array(width - p.length).fill(0), ...p]), [[4], [6], [1]], [[7], [3], [9]], [[2], [5]], [[8], [1]]],
        keep: { at: 3, rows: [0, 2] },
      },
    ];
    for (const c of cases) {
      const before = tf.memory().numTensors;
      const plain = await withNative(false, () => run(model, c.padding, c.steps, c.keep, c.maxLength));
      const fast = await withNative(true, () => run(model, c.padding, c.steps, c.keep, c.maxLength));
      assert.equal(plain.fastSteps, 0);
      assert.equal(fast.fastSteps, c.steps.length - 1, "the one-token steps did not take the fast path");
      fast.value.forEach((got, i) => {
        const want = plain.value[i];
        assert.equal(got.length, want.length);
        let worst = 0;
        for (let j = 0; j < want.length; j++) worst = Math.max(worst, Math.abs(got[j] - want[j]) / (1 + Math.abs(want[j])));
        assert.ok(worst < 3e-6, `qkvBias ${qkvBias}, ${c.padding.length} rows, step ${i}: max relative |fast - plain| = ${worst}`);
      });
      assert.equal(tf.memory().numTensors, before, "the fast path leaked tensors");
    }
    model.dispose();
  }
});

for (const name of ["small", "vocab"]) {
  test(`${name}: the fast one-token steps give PyTorch's greedy tokens, the plain path's sampled ones, and leak nothing`, async (t) => {
    if (skip) return t.skip(skip);
    const g = load(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const steps = g.greedy[0].length - g.prompt[0].length;
    const before = tf.memory().numTensors;
    const greedy = await withNative(true, () => generateIds(model, g.prompt, { maxNewTokens: steps, contextSize: g.config.contextLength, kvCache: true }));
    assert.deepEqual(greedy.value, g.greedy);
    assert.ok(greedy.fastSteps > 0, "no step took the fast path");
    const opts = { maxNewTokens: 12, kvCache: true, temperature: 1.2, topK: 20, seed: 5 };
    const fast = await withNative(true, () => generateIds(model, g.prompt, opts));
    const plain = await withNative(false, () => generateIds(model, g.prompt, opts));
    assert.deepEqual(fast.value, plain.value);
    assert.equal(tf.memory().numTensors, before, "generation leaked tensors");
    model.dispose();
  });
}

test("the plain path where the fast one does not apply: a LoRA adapter, or switched off", async (t) => {
  if (skip) return t.skip(skip);
  const g = load("small");
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  assert.equal(nativeDecodeProblem(model), null);
  const saved = NATIVE_DECODE.on;
  NATIVE_DECODE.on = false;
  assert.match(nativeDecodeProblem(model) ?? "", /COURSE_NATIVE_DECODE=0/);
  NATIVE_DECODE.on = saved;
  model.applyLoRA({ rank: 2, alpha: 4 });
  assert.match(nativeDecodeProblem(model) ?? "", /LoRA/);
  const withLoRA = await withNative(true, () => generateIds(model, g.prompt, { maxNewTokens: 4, kvCache: true }));
  assert.equal(withLoRA.fastSteps, 0);
  assert.equal(withLoRA.value[0].length, g.prompt[0].length + 4);
  model.dispose();
});

test("each raw op gives TF.js's own op's values, and dispose frees the kept constants", (t) => {
  if (skip) return t.skip(skip);
  const before = tf.memory().numTensors;
  const ops = new NativeOps();
  const worst: Array<[string, number]> = [];
  tf.tidy(() => {
    const a = tf.randomNormal([2, 3, 4, 5], 0, 1, "float32", 1);
    const b = tf.randomNormal([2, 3, 4, 5], 0, 1, "float32", 2);
    const pos = tf.add(tf.abs(a), 0.5);
    const m = tf.randomNormal([6, 7], 0, 1, "float32", 3);
    const n = tf.randomNormal([7, 8], 0, 1, "float32", 4);
    const pairs: Array<[string, tf.Tensor, tf.Tensor]> = [
      ["add", ops.add(a, b), tf.add(a, b)],
      ["sub", ops.sub(a, b), tf.sub(a, b)],
      ["mul", ops.mul(a, ops.scalar(0.5)), tf.mul(a, 0.5)],
      ["div", ops.div(a, pos), tf.div(a, pos)],
      ["square", ops.square(a), tf.square(a)],
      ["sqrt", ops.sqrt(pos), tf.sqrt(pos)],
      ["tanh", ops.tanh(a), tf.tanh(a)],
      ["softmax", ops.softmax(a), tf.softmax(a, -1)],
      ["meanLast", ops.meanLast(a), tf.mean(a, -1, true)],
      ["matMul", ops.matMul(a, b, true), tf.matMul(a, b, false, true)],
      ["matMul2d", ops.matMul2d(m, n), tf.matMul(m, n)],
      ["matMulV3", ops.matMulV3(a, b, true), tf.matMul(a, b, false, true)],
      ["matMulV3 against a 2-D b", ops.matMulV3(a, tf.transpose(b.reshape([-1, 5]))), tf.matMul(a, tf.transpose(b.reshape([-1, 5])))],
      ["reshape", ops.reshape(a, [6, 20]), a.reshape([6, 20])],
      ["split", tf.stack(ops.split(tf.concat([a, b, a], 1), 3, 1)), tf.stack(tf.split(tf.concat([a, b, a], 1), 3, 1))],
      ["concat", ops.concat([a, b], 2), tf.concat([a, b], 2)],
    ];
    for (const [name, got, want] of pairs) {
      assert.deepEqual(got.shape, want.shape, name);
      worst.push([name, tf.max(tf.abs(tf.sub(got, want))).dataSync()[0]]);
    }
  });
  for (const [name, d] of worst) assert.ok(d < 1e-5, `${name}: max |raw - TF.js| = ${d}`);
  assert.ok(tf.memory().numTensors > before, "no constant was kept");
  ops.dispose();
  assert.equal(tf.memory().numTensors, before, "dispose left kept constants");
});
