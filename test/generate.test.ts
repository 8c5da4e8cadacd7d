// generate: greedy tokens identical to the PyTorch reference (test/reference/gpt_reference.py),
// context cropping, eos stop, seeded top-k sampling, the book's response extraction, no leaks;
// the key/value cache (model.forward's `cache` option) checked against the plain loop token for token.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import type { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { Rng } from "../lib/core/random";
import { formatInput } from "../lib/data/prompt";
import { encodeText } from "../lib/data/tokenizer";
import { generate, generateIds, generateResponse, pickNextToken, textToTokenIds, tokenIdsToText } from "../lib/generate/generate";
import { ConfigError, DataError } from "../lib/core/errors";
import { FUSED_QKV, KVCache } from "../lib/model/kv-cache";
import { NativeDecoder } from "../lib/model/native-decode";
import { deterministicModel } from "./helpers/deterministic-weights";

interface Golden {
  config: GPTConfig;
  tiedHead: boolean;
  prompt: number[][];
  greedy: number[][];
}
const load = (name: string): Golden =>
  JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", `gpt-golden-${name}.json`), "utf8"));

before(async () => {
  await initEngine({ log: () => {} });
});

for (const name of ["small", "vocab"]) {
  test(`${name}: greedy generate gives PyTorch's tokens (cropping to the context when the text outgrows it)`, async () => {
    const g = load(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const steps = g.greedy[0].length - g.prompt[0].length;
    const idx = tf.tensor2d(g.prompt, undefined, "int32");
    const out = await generate(model, idx, { maxNewTokens: steps, contextSize: g.config.contextLength });
    assert.deepEqual(await out.array(), g.greedy);
    tf.dispose([idx, out]);
    model.dispose();
  });
}

for (const name of ["small", "vocab"]) {
  test(`${name}: the key/value cache gives PyTorch's greedy tokens too, and the same logits as forward`, async () => {
    const g = load(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const steps = g.greedy[0].length - g.prompt[0].length;
    const before = tf.memory().numTensors;
    assert.deepEqual(await generateIds(model, g.prompt, { maxNewTokens: steps, contextSize: g.config.contextLength, kvCache: true }), g.greedy);
    assert.equal(tf.memory().numTensors, before, "the cache leaked tensors");
    // prefill 3 tokens, then one at a time: each step's logits equal the plain forward's
    const seq = g.greedy.map((r) => r.slice(0, Math.min(r.length, g.config.contextLength)));
    const cache = new KVCache();
    for (let t = 3; t <= seq[0].length; t++) {
      const fed = seq.map((r) => (t === 3 ? r.slice(0, 3) : [r[t - 1]]));
      const diff = tf.tidy(() => {
        const got = model.forward(tf.tensor2d(fed, undefined, "int32"), { cache }); // (B, fed, V)
        const want = model.forward(tf.tensor2d(seq.map((r) => r.slice(0, t)), undefined, "int32")); // (B, t, V)
        return tf.max(tf.abs(tf.sub(got, want.slice([0, t - fed[0].length, 0], got.shape)))).dataSync()[0];
      });
      assert.equal(cache.length, t);
      assert.ok(diff < 1e-4, `positions ${t - fed[0].length}..${t - 1}: max |cached - forward| = ${diff}`);
    }
    assert.ok(tf.memory().numTensors > before, "the cache holds no tensors");
    cache.reset();
    assert.equal(tf.memory().numTensors, before, "reset() left cached keys or values");
    model.dispose();
  });
}

test("the cached and plain loops pick the same tokens: greedy and sampled, batch 2, up to and past the context", async () => {
  const g = load("small"); // contextLength 16
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  const long = Array.from({ length: 20 }, (_, i) => (i * 7 + 3) % g.config.vocabSize);
  const prompts = [
    g.prompt, // 3 tokens, grows past the context
    [long.slice(0, 16), long.slice(4, 20)], // exactly the context length
    [long, long.slice().reverse()], // longer than the context
  ];
  const settings = [{}, { temperature: 1 }, { temperature: 0.7, topK: 5 }, { temperature: 1.3, contextSize: 6 }, { contextSize: 6 }];
  for (const prompt of prompts) {
    for (const setting of settings) {
      const opts = { maxNewTokens: 20, seed: 7, ...setting };
      const plain = await generateIds(model, prompt, opts);
      const cached = await generateIds(model, prompt, { ...opts, kvCache: true });
      assert.deepEqual(cached, plain, `prompt of ${prompt[0].length} tokens, ${JSON.stringify(setting)}`);
    }
  }
  model.dispose();
});

test("at the context limit the cache starts again on the cropped window every step, as the positions shift", async () => {
  const g = load("small"); // contextLength 16
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  const fed: number[] = [];
  const hidden = model.hidden.bind(model);
  model.hidden = (ids, opts) => {
    fed.push(ids.shape[1]);
    return hidden(ids, opts);
  };
  // on the native engine the one-token steps go through native-decode.ts, not model.hidden: counted too
  const nativeStep = NativeDecoder.prototype.logits;
  NativeDecoder.prototype.logits = function (ids, cache) {
    fed.push(ids[0].length);
    return nativeStep.call(this, ids, cache);
  };
  try {
    await generateIds(model, [[1, 2, 3, 4, 5]], { maxNewTokens: 6, contextSize: 8, kvCache: true });
  } finally {
    NativeDecoder.prototype.logits = nativeStep;
  }
  // 5 prompt tokens, then one at a time until the text fills the 8-token window (5, 6, 7, 8 tokens),
  // then the text is 9, 10 tokens long: the last 8 again, from position 0
  assert.deepEqual(fed, [5, 1, 1, 1, 8, 8]);
  model.dispose();
});

test("forward with a cache: positions past the context and a batch that differs are DataErrors", () => {
  const g = load("small");
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  const cache = new KVCache();
  const ids = (rows: number[][]) => tf.tensor2d(rows, undefined, "int32");
  tf.dispose(model.forward(ids([Array(10).fill(1), Array(10).fill(2)]), { cache }));
  assert.throws(() => tf.tidy(() => model.forward(ids([Array(7).fill(1), Array(7).fill(2)]), { cache })), /10 cached \+ 7 new tokens exceed the context length 16/);
  assert.throws(() => tf.tidy(() => model.forward(ids([[1]]), { cache })), DataError);
  assert.equal(cache.length, 10);
  cache.reset();
  assert.equal(cache.length, 0);
  model.dispose();
});

test("stops at eos without appending it; no tensor leaks", async () => {
  const g = load("small");
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  const prompt = [g.prompt[0]];
  const full = g.greedy[0];
  // pretend the 5th generated token is the end-of-text token
  const eos = full[prompt[0].length + 4];
  const firstEos = full.indexOf(eos, prompt[0].length);
  const before = tf.memory().numTensors;
  const [ids] = await generateIds(model, prompt, { maxNewTokens: 30, contextSize: g.config.contextLength, eosId: eos });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(ids, full.slice(0, firstEos));
  model.dispose();
});

test("top-k sampling is seeded, stays within the top k, and temperature 0 is greedy", () => {
  const logits = Float32Array.from([0.1, 3, 2.9, -1, 2.8, 0]);
  const draws = (seed: number) => Array.from({ length: 200 }, ((rng) => () => pickNextToken(logits, 1.5, 3, rng))(new Rng(seed)));
  const a = draws(5);
  assert.deepEqual(a, draws(5));
  assert.notDeepEqual(a, draws(6));
  assert.deepEqual(new Set(a), new Set([1, 2, 4]));
  assert.equal(pickNextToken(logits, 0, undefined, new Rng(1)), 1);
  // a tiny temperature concentrates the mass on the best token
  assert.ok(Array.from({ length: 50 }, ((rng) => () => pickNextToken(logits, 0.01, undefined, rng))(new Rng(2))).every((t) => t === 1));
});

test("generateResponse: prompt = formatInput alone, response cut after it, header removed, trimmed", async () => {
  // a model that always answers with the same text: "\n\n### Response:\n  Paris. " then <|endoftext|>
  const answer = [...encodeText("\n\n### Response:\n  Paris. "), 50256];
  const entry = { instruction: "Name the capital of France.", input: "" };
  const promptLen = encodeText(formatInput(entry)).length;
  const cfg: GPTConfig = { vocabSize: 50257, contextLength: 256, embDim: 4, nHeads: 1, nLayers: 1, dropRate: 0, qkvBias: true };
  const model = new GPTModel(cfg);
  // replace the forward pass: logits peaked at the next token of `answer`
  model.forward = (idx: tf.Tensor2D) =>
    tf.tidy(() => {
      const [b, t] = idx.shape;
      const k = Math.max(0, t - promptLen);
      const next = answer[Math.min(k, answer.length - 1)];
      const rows = tf.oneHot(tf.fill([b * t], next, "int32"), cfg.vocabSize).reshape([b, t, cfg.vocabSize]);
      return tf.mul(rows, 10) as tf.Tensor3D; // (B, T, V)
    });
  assert.equal(await generateResponse(model, entry, { kvCache: false }), "Paris.");
  model.dispose();
});

test("text <-> token ids round trip, and bad options are ConfigErrors", async () => {
  const ids = textToTokenIds("Every effort moves you");
  assert.deepEqual(ids.shape, [1, 4]);
  assert.equal(await tokenIdsToText(ids), "Every effort moves you");
  ids.dispose();
  const g = load("small");
  const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
  await assert.rejects(generateIds(model, [[1]], { maxNewTokens: 1, temperature: -1 }), ConfigError);
  await assert.rejects(generateIds(model, [[1]], { maxNewTokens: 1, topK: 0 }), ConfigError);
  await assert.rejects(generateIds(model, [[1]], { maxNewTokens: 1, contextSize: 999 }), ConfigError);
  model.dispose();
});

test("one side-by-side query-key-value product while generating (FUSED_QKV) gives the three products' logits, is made once and again after a weight changes", async () => {
  const g = load("small");
  for (const qkvBias of [false, true]) {
    const model = deterministicModel({ ...g.config, qkvBias }, { tiedHead: g.tiedHead });
    const layers = model.linears();
    const attn = { wQuery: layers.get("blocks.0.att.wQuery")!, wKey: layers.get("blocks.0.att.wKey")!, wValue: layers.get("blocks.0.att.wValue")! };
    const seq = [g.prompt[0].concat([5, 9, 2, 7])];
    const saved = FUSED_QKV.on; // "native" unless COURSE_FUSED_QKV says otherwise: forced on and off here, on every engine
    const run = (fused: boolean, cache: KVCache): number[][] => {
      FUSED_QKV.on = fused;
      try {
        const steps: number[][] = [];
        for (let t = 3; t <= seq[0].length; t++) {
          const fed = seq.map((r) => (t === 3 ? r.slice(0, 3) : [r[t - 1]]));
          steps.push(tf.tidy(() => Array.from(model.forward(tf.tensor2d(fed, undefined, "int32"), { cache }).dataSync())));
        }
        return steps;
      } finally {
        FUSED_QKV.on = saved;
      }
    };
    const before = tf.memory().numTensors;
    const plainCache = new KVCache();
    const plain = run(false, plainCache);
    const fusedCache = new KVCache();
    const fused = run(true, fusedCache);
    plain.forEach((p, i) => {
      const d = Math.max(...p.map((x, j) => Math.abs(x - fused[i][j])));
      assert.ok(d < 1e-5, `qkvBias ${qkvBias}, step ${i}: max |fused - three products| = ${d}`);
    });
    // the side-by-side weights: (C, 3C) with the three weights' columns, kept and reused while nothing changes
    const layer = fusedCache.layer(0);
    const parts = { weights: [attn.wQuery.weight, attn.wKey.weight, attn.wValue.weight], biases: qkvBias ? [attn.wQuery.bias!, attn.wKey.bias!, attn.wValue.bias!] : null };
    const first = layer.qkvWeights(parts);
    assert.deepEqual(first.w.shape, [g.config.embDim, 3 * g.config.embDim]);
    assert.equal(first.b === null, !qkvBias);
    const cols = tf.tidy(() => tf.max(tf.abs(tf.sub(first.w.slice([0, g.config.embDim], [-1, g.config.embDim]), attn.wKey.weight))).dataSync()[0]);
    assert.equal(cols, 0, "the keys' columns are not wKey");
    assert.equal(layer.qkvWeights(parts).w, first.w, "made again though no weight changed");
    const doubled = tf.mul(attn.wKey.weight, 2);
    attn.wKey.weight.assign(doubled);
    doubled.dispose();
    const again = layer.qkvWeights(parts);
    assert.notEqual(again.w, first.w, "not made again after wKey changed");
    assert.ok(first.w.isDisposed, "the stale side-by-side weights were not freed");
    plainCache.reset();
    fusedCache.reset();
    assert.equal(tf.memory().numTensors, before, "reset() left the side-by-side weights");
    model.dispose();
  }
});
