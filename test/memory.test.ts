// Memory over a whole run (issue 5): no tensor is left behind by an evaluation or by generating
// the 110 test responses, and neither the tensors' bytes nor the wasm heap grow from epoch to
// epoch. (The per-step count is asserted in test/train-loop.test.ts.)
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTModel } from "../lib/model/gpt";
import type { GPTConfig } from "../lib/model/config";
import { InstructionDataset } from "../lib/data/dataset";
import { DataLoader } from "../lib/data/loader";
import type { InstructionEntry } from "../lib/data/instruction-data";
import { AdamW } from "../lib/train/adamw";
import { calcLossLoader } from "../lib/train/loss";
import { evaluateModel, trainModelSimple } from "../lib/train/train";
import { generateResponse } from "../lib/generate/generate";

// GPT-2's vocabulary (the data uses its token ids) but a very narrow, shallow model
const MICRO: GPTConfig = { vocabSize: 50257, contextLength: 128, embDim: 8, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true };

const entries: InstructionEntry[] = Array.from({ length: 110 }, (_, i) => ({
  instruction: `Add ${i} and ${i + 1}.`,
  input: i % 2 ? "" : `${i}`,
  output: `The sum is ${2 * i + 1}.`,
}));

function loaders(train: InstructionEntry[], val: InstructionEntry[]) {
  const collateOptions = { allowedMaxLength: MICRO.contextLength };
  return {
    trainLoader: new DataLoader(new InstructionDataset(train), { batchSize: 4, shuffle: true, dropLast: true, seed: 123, collateOptions }),
    valLoader: new DataLoader(new InstructionDataset(val), { batchSize: 4, collateOptions }),
  };
}

/** The wasm module's heap (it only ever grows, so its size is the peak); undefined on other engines. */
function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength;
}

before(async () => {
  await initEngine({ log: () => {} });
});

test("evaluateModel and calcLossLoader leave no tensors behind", async () => {
  const model = new GPTModel(MICRO, { seed: 1 });
  const { trainLoader, valLoader } = loaders(entries.slice(0, 16), entries.slice(16, 24));
  const before = tf.memory().numTensors;
  for (let i = 0; i < 3; i++) {
    const { trainLoss, valLoss } = await evaluateModel(model, trainLoader, valLoader, 2, i);
    assert.ok(Number.isFinite(trainLoss) && Number.isFinite(valLoss));
    assert.equal(tf.memory().numTensors, before, `evaluation ${i} leaked tensors`);
  }
  // the whole loader, and a loader stopped early (its generator is closed half-way)
  assert.ok(Number.isFinite(await calcLossLoader(valLoader.batches(0), model)));
  assert.ok(Number.isFinite(await calcLossLoader(trainLoader.batches(0), model, 1)));
  assert.equal(tf.memory().numTensors, before, "calcLossLoader leaked tensors");
  model.dispose();
});

test("generating the responses of 110 test entries leaves no tensors behind", async () => {
  const model = new GPTModel(MICRO, { seed: 2 });
  const before = tf.memory().numTensors;
  const responses: string[] = [];
  for (const e of entries) responses.push(await generateResponse(model, e, { maxNewTokens: 8 }));
  assert.equal(responses.length, 110);
  assert.equal(tf.memory().numTensors, before, "generateResponse (key/value cache) leaked tensors");
  // the book's plain loop too, on a few
  for (const e of entries.slice(0, 5)) await generateResponse(model, e, { maxNewTokens: 8, kvCache: false });
  assert.equal(tf.memory().numTensors, before, "generateResponse (plain loop) leaked tensors");
  model.dispose();
});

test("tensor count, tensor bytes and the wasm heap are the same after epochs 1, 2 and 3", async () => {
  const model = new GPTModel(MICRO, { seed: 3 });
  const opt = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
  const { trainLoader, valLoader } = loaders(entries.slice(0, 16), entries.slice(16, 20));
  const atEpochEnd: { numTensors: number; numBytes: number; heap: number | undefined }[] = [];
  await trainModelSimple(model, trainLoader, valLoader, opt, {
    numEpochs: 3,
    evalFreq: 2,
    evalIter: 1,
    startContext: "Add 1 and 2.",
    sampleTokens: 5,
    log: () => {},
    onEpochEnd: () => {
      const { numTensors, numBytes } = tf.memory();
      atEpochEnd.push({ numTensors, numBytes, heap: wasmHeapBytes() });
    },
  });
  assert.equal(atEpochEnd.length, 3);
  if (tf.getBackend() === "wasm") assert.equal(typeof atEpochEnd[0].heap, "number", "the wasm heap was not measured");
  // after epoch 1 the optimizer's moments exist; from then on nothing may accumulate
  assert.deepEqual(atEpochEnd[1], atEpochEnd[0], `epoch 2 vs epoch 1: ${JSON.stringify(atEpochEnd)}`);
  assert.deepEqual(atEpochEnd[2], atEpochEnd[0], `epoch 3 vs epoch 1: ${JSON.stringify(atEpochEnd)}`);
  opt.dispose();
  model.dispose();
});
