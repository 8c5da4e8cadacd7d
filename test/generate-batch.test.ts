// Batched generation (lib/generate/batch.ts) against its plain twin, one prompt after another with the
// key/value cache: prompts of different lengths in one left-padded batch, each stopping at its own
// end-of-text, give the very same tokens; the padded batch's logits equal each prompt's own; no leaks.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import type { GPTConfig } from "../lib/model/config";
import { TINY } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { KVCache } from "../lib/model/kv-cache";
import { ConfigError } from "../lib/core/errors";
import { Rng } from "../lib/core/random";
import { generateIds, generateResponse } from "../lib/generate/generate";
import { generateIdsBatched, generateResponses } from "../lib/generate/batch";
import { cachedDecoder, greedyNext, type CachedDecoder } from "../lib/generate/decoder";

before(async () => {
  await initEngine({ log: () => {} });
});

const CFG: GPTConfig = { vocabSize: 61, contextLength: 40, embDim: 32, nHeads: 4, nLayers: 2, dropRate: 0, qkvBias: true };
/** Prompts of lengths 1..13, different contents. */
const PROMPTS = [5, 1, 13, 8, 2, 11, 3, 9, 7, 12, 4].map((n, k) => Array.from({ length: n }, (_, i) => (i * 17 + k * 7 + 3) % CFG.vocabSize));

/** One prompt after another, each with its own cache: the plain twin. */
async function oneByOne(model: GPTModel, prompts: number[][], opts: Parameters<typeof generateIds>[2]): Promise<number[][]> {
  const out: number[][] = [];
  for (const p of prompts) out.push((await generateIds(model, [p], { ...opts, kvCache: true }))[0]);
  return out;
}

test("a left-padded batch gives each row the logits it gets alone (positions and padding mask)", () => {
  const model = new GPTModel(CFG, { seed: 3 });
  const prompts = [PROMPTS[0], PROMPTS[2], PROMPTS[1]]; // 5, 13, 1 tokens
  const width = 13;
  const before = tf.memory().numTensors;
  const cache = new KVCache();
  cache.setPadding(prompts.map((p) => width - p.length));
  const diff = tf.tidy(() => {
    const padded = tf.tensor2d(prompts.map((p) => [...new Array(width - p.length).fill(0), ...p]), undefined, "int32");
    const got = model.forward(padded, { cache }); // (3, 13, V)
    const step = model.forward(tf.tensor2d([[7], [8], [9]], undefined, "int32"), { cache }); // (3, 1, V): one more token each
    let worst = 0;
    prompts.forEach((p, b) => {
      const alone = model.forward(tf.tensor2d([[...p, 7 + b]], undefined, "int32")); // (1, n + 1, V)
      const n = p.length;
      const text = got.slice([b, width - n, 0], [1, n, CFG.vocabSize]); // the row's text columns
      worst = Math.max(worst, tf.max(tf.abs(tf.sub(text, alone.slice([0, 0, 0], [1, n, CFG.vocabSize])))).dataSync()[0]);
      worst = Math.max(worst, tf.max(tf.abs(tf.sub(step.slice([b, 0, 0], [1, 1, CFG.vocabSize]), alone.slice([0, n, 0], [1, 1, CFG.vocabSize])))).dataSync()[0]);
    });
    return worst;
  });
  assert.ok(diff < 1e-5, `max |padded batch - alone| = ${diff}`);
  // a finished row leaves: the rest keep their logits, and the all-padding columns are cut off
  cache.keepRows([0, 2]); // the 5- and 1-token rows: 8 columns of padding in both go
  assert.equal(cache.length, 14 - 8);
  assert.deepEqual(cache.padding, [0, 4]);
  const diff2 = tf.tidy(() => {
    const step = model.forward(tf.tensor2d([[4], [6]], undefined, "int32"), { cache }); // (2, 1, V)
    const alone0 = model.forward(tf.tensor2d([[...prompts[0], 7, 4]], undefined, "int32")).slice([0, 6, 0], [1, 1, CFG.vocabSize]);
    const alone2 = model.forward(tf.tensor2d([[...prompts[2], 9, 6]], undefined, "int32")).slice([0, 2, 0], [1, 1, CFG.vocabSize]);
    return tf.max(tf.abs(tf.sub(step, tf.concat([alone0, alone2], 0)))).dataSync()[0];
  });
  assert.ok(diff2 < 1e-5, `after keepRows: max |batch - alone| = ${diff2}`);
  cache.reset();
  assert.equal(tf.memory().numTensors, before, "padded cache leaked tensors");
  model.dispose();
});

test("a decoder's greedy picks, found on the engine, are the first largest of its logits (ties included)", async () => {
  const model = new GPTModel(CFG, { seed: 5 });
  const prompts = [PROMPTS[0], PROMPTS[2], PROMPTS[1]];
  const width = 13;
  const feed = [prompts.map((p) => [...new Array(width - p.length).fill(0), ...p]), [[7], [8], [9]], [[1], [2], [3]]];
  const before = tf.memory().numTensors;
  const withLogits = cachedDecoder(model, 20);
  const greedy = cachedDecoder(model, 20);
  for (const d of [withLogits, greedy]) d.setPadding(prompts.map((p) => width - p.length));
  for (const ids of feed) {
    const values = await withLogits.next(ids);
    const picks = await greedy.nextGreedy!(ids);
    const want = ids.map((_, b) => {
      const row = Array.from(values.subarray(b * CFG.vocabSize, (b + 1) * CFG.vocabSize));
      return row.indexOf(Math.max(...row));
    });
    assert.deepEqual(picks, want);
    assert.deepEqual(await greedyNext({ ...withLogits, next: async () => values, nextGreedy: undefined } as CachedDecoder, ids, CFG.vocabSize), want);
  }
  // a tie: the first of the equal largest, as torch.argmax (and the JavaScript fallback)
  const tied = new Float32Array(2 * CFG.vocabSize).fill(-1);
  tied[4] = tied[9] = 3;
  tied[CFG.vocabSize + 1] = tied[CFG.vocabSize + 0] = 2;
  assert.deepEqual(await greedyNext({ next: async () => tied } as unknown as CachedDecoder, [[0], [0]], CFG.vocabSize), [4, 0]);
  assert.deepEqual(tf.tidy(() => Array.from(tf.argMax(tf.tensor2d(tied, [2, CFG.vocabSize]), -1).dataSync())), [4, 0]);
  withLogits.reset();
  greedy.reset();
  assert.equal(tf.memory().numTensors, before);
  model.dispose();
});

test("batched greedy generation = one prompt at a time, each row stopping at its own end-of-text", async () => {
  const model = new GPTModel(CFG, { seed: 11 });
  // an end-of-text id that the rows reach at different steps: the commonest new token of the plain run
  const free = await oneByOne(model, PROMPTS, { maxNewTokens: 12 });
  const counts = new Map<number, number>();
  free.forEach((row, i) => row.slice(PROMPTS[i].length).forEach((id) => counts.set(id, (counts.get(id) ?? 0) + 1)));
  const eosId = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const want = await oneByOne(model, PROMPTS, { maxNewTokens: 12, eosId });
  const lengths = new Set(want.map((row, i) => row.length - PROMPTS[i].length));
  assert.ok(lengths.size >= 3, `rows should stop at different steps, got new-token counts ${[...lengths]}`);
  for (const batchSize of [1, 3, 4, 8, 32]) {
    const before = tf.memory().numTensors;
    let done = 0;
    const got = await generateIdsBatched(model, PROMPTS, { maxNewTokens: 12, eosId, batchSize, onProgress: (n) => (done += n) });
    assert.deepEqual(got, want, `batch size ${batchSize}`);
    assert.equal(done, PROMPTS.length, "progress counts every prompt once");
    assert.equal(tf.memory().numTensors, before, `batch size ${batchSize} leaked tensors`);
  }
  // fewer forward passes than one prompt at a time
  let passes = 0;
  const hidden = model.hidden.bind(model);
  model.hidden = (ids, opts) => (passes++, hidden(ids, opts));
  await generateIdsBatched(model, PROMPTS, { maxNewTokens: 12, eosId, batchSize: 32 });
  assert.ok(passes <= 12, `one batch of 11 prompts: at most 12 forward passes, got ${passes}`);
  model.dispose();
});

test("prompts that would outgrow the context, sampling and the plain loop run one at a time, with the same results", async () => {
  const model = new GPTModel(CFG, { seed: 5 });
  const long = Array.from({ length: 36 }, (_, i) => (i * 5 + 1) % CFG.vocabSize); // 36 + 12 > 40: cropped alone
  const prompts = [PROMPTS[2], long, PROMPTS[1]];
  assert.deepEqual(await generateIdsBatched(model, prompts, { maxNewTokens: 12 }), await oneByOne(model, prompts, { maxNewTokens: 12 }));
  assert.deepEqual(await generateIdsBatched(model, prompts, { maxNewTokens: 12, contextSize: 16 }), await oneByOne(model, prompts, { maxNewTokens: 12, contextSize: 16 }));
  const sampled = { maxNewTokens: 8, temperature: 1, topK: 5, seed: 9 };
  // one stream of draws across the prompts, as a loop over generateIds sharing one Rng uses it
  const rng = new Rng(9);
  const drawn: number[][] = [];
  for (const p of prompts) drawn.push((await generateIds(model, [p], { ...sampled, rng, kvCache: true }))[0]);
  assert.deepEqual(await generateIdsBatched(model, prompts, sampled), drawn);
  await assert.rejects(() => generateIdsBatched(model, prompts, { maxNewTokens: 2, batchSize: 0 }), ConfigError);
  await assert.rejects(() => generateIdsBatched(model, [[1], []], { maxNewTokens: 2 }), /prompt 1 has no tokens/);
  model.dispose();
});

test("generateResponses = generateResponse for each entry (the test set's prompts, GPT-2's vocabulary)", async () => {
  const model = new GPTModel({ ...TINY, nLayers: 1 }, { seed: 2 });
  const entries = [
    { instruction: "Name the capital of France.", input: "" },
    { instruction: "Rewrite the sentence in passive voice.", input: "The cat chased the mouse." },
    { instruction: "What is 2 + 2?", input: "" },
    { instruction: "Convert 5 kilometers to meters.", input: "" },
    { instruction: "Give a synonym.", input: "happy" },
  ];
  const want: string[] = [];
  for (const e of entries) want.push(await generateResponse(model, e, { maxNewTokens: 10 }));
  assert.deepEqual(await generateResponses(model, entries, { maxNewTokens: 10, batchSize: 4 }), want);
  model.dispose();
});
