// The DPO training loop (the book's train_model_dpo_simple) on a micro model: the book's log line, the schedule,
// the history, a falling loss, no tensor left behind by a step, an evaluation or the loop (tf.memory()), a
// non-finite loss refused before any update, and the wasm memory check.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTModel } from "../lib/model/gpt";
import type { GPTConfig } from "../lib/model/config";
import { loadPreferenceData } from "../lib/data/preference-data";
import { PreferenceDataset } from "../lib/data/preference-dataset";
import { PreferenceLoader } from "../lib/data/preference-loader";
import { formatInput } from "../lib/data/prompt";
import { AdamW } from "../lib/train/adamw";
import { referenceFor } from "../lib/train/dpo-reference";
import { dpoTrainStep, evaluateDPO, formatDPOEvalLine, rewardMargins, trainModelDPOSimple } from "../lib/train/dpo-train";
import { dpoBytes, dpoMemoryProblem } from "../lib/train/dpo-memory";
import { TrainingError } from "../lib/train/train";

const MICRO: GPTConfig = { vocabSize: 50257, contextLength: 256, embDim: 16, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };

before(async () => {
  await initEngine({ log: () => {} });
});

async function setup(entries = 24) {
  const data = (await loadPreferenceData()).slice(0, entries);
  const loader = (from: number, to: number, train: boolean) =>
    new PreferenceLoader(new PreferenceDataset(data.slice(from, to)), { batchSize: 4, shuffle: train, dropLast: train, collateOptions: { allowedMaxLength: MICRO.contextLength } });
  const policy = new GPTModel(MICRO, { seed: 3 });
  const copy = new GPTModel(MICRO, { seed: 3 });
  return { data, policy, reference: referenceFor(policy, copy), trainLoader: loader(0, 16, true), valLoader: loader(16, entries, false) };
}

test("the book's log line", () => {
  const train = { loss: 0.6921, chosenReward: 0.03, rejectedReward: 0.011 };
  const val = { loss: 0.69314, chosenReward: 0.0, rejectedReward: -0.009 };
  assert.equal(formatDPOEvalLine(0, 5, train, val), "Ep 1 (Step 000005): Train loss 0.692, Val loss 0.693, Train reward margins 0.019, Val reward margins 0.009");
});

test("a DPO step, an evaluation and the loss over a loader leave no tensor behind", async () => {
  const { policy, reference, trainLoader, valLoader } = await setup();
  const optimizer = new AdamW(policy.trainableParams(), { lr: 1e-3, weightDecay: 0.01 });
  const batch = trainLoader.batches(0).next().value!;
  await dpoTrainStep(policy, reference, optimizer, batch, 0.1, 0); // creates AdamW's moments
  const before = tf.memory().numTensors;
  await dpoTrainStep(policy, reference, optimizer, batch, 0.1, 1);
  await evaluateDPO(policy, reference, trainLoader, valLoader, 0.1, 2);
  assert.equal(tf.memory().numTensors, before);
  optimizer.dispose();
  tf.disposeVariables();
});

test("LoRA DPO (reference = the adapter off): a step trains A and B only and leaves no tensor behind", async () => {
  const { policy, trainLoader } = await setup();
  policy.applyLoRA({ rank: 2, alpha: 2 });
  const reference = referenceFor(policy);
  const optimizer = new AdamW(policy.trainableParams(), { lr: 1e-2, weightDecay: 0.01 });
  const frozen = policy.param("blocks.0.att.wQuery.weight").dataSync().slice();
  const batch = trainLoader.batches(0).next().value!;
  await dpoTrainStep(policy, reference, optimizer, batch, 0.1, 0);
  const before = tf.memory().numTensors;
  const loss = await dpoTrainStep(policy, reference, optimizer, batch, 0.1, 1);
  assert.equal(tf.memory().numTensors, before);
  assert.ok(loss < Math.log(2), `the second step's loss ${loss} is below ln 2`);
  assert.deepEqual(policy.param("blocks.0.att.wQuery.weight").dataSync(), frozen, "the frozen weights did not move");
  optimizer.dispose();
  tf.disposeVariables();
});

test("trainModelDPOSimple: evaluations at steps 0, 5, 10, the book's lines, margins that grow, a sample per epoch, no leak", async () => {
  const { data, policy, reference, trainLoader, valLoader } = await setup();
  const optimizer = new AdamW(policy.trainableParams(), { lr: 3e-3, weightDecay: 0.01 });
  const lines: string[] = [];
  const steps: number[] = [];
  const before = tf.memory().numTensors + 2 * policy.params.size; // + AdamW's two moments per parameter
  const history = await trainModelDPOSimple(policy, reference, trainLoader, valLoader, optimizer, {
    numEpochs: 3, beta: 0.1, evalFreq: 5, evalIter: 2, startContext: formatInput(data[20]), sampleTokens: 3,
    log: (line) => lines.push(line),
    onStep: (s) => steps.push(s.step),
  });
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(steps, Array.from({ length: 12 }, (_, i) => i)); // 3 epochs × 4 batches
  assert.deepEqual(history.steps, [0, 5, 10]);
  const evalLines = lines.filter((l) => l.startsWith("Ep "));
  assert.equal(evalLines.length, 3);
  assert.match(evalLines[0], /^Ep 1 \(Step 000000\): Train loss \d\.\d{3}, Val loss \d\.\d{3}, Train reward margins -?\d\.\d{3}, Val reward margins -?\d\.\d{3}$/);
  assert.match(evalLines[2], /^Ep 3 \(Step 000010\)/);
  assert.equal(lines.filter((l) => l.startsWith(formatInput(data[20]).replace(/\n/g, " "))).length, 3, "a sample after each epoch");
  const margins = rewardMargins(history);
  assert.ok(margins.train[2] > margins.train[0] && history.trainLosses[2] < history.trainLosses[0], `train margins ${margins.train}, losses ${history.trainLosses}`);
  assert.deepEqual(history.tokensSeen.length, 3);
  optimizer.dispose();
  tf.disposeVariables();
});

test("a non-finite loss stops training before any update, naming the step", async () => {
  const { policy, reference, trainLoader } = await setup();
  const optimizer = new AdamW(policy.trainableParams(), { lr: 1e-3 });
  const w = policy.param("finalNorm.scale");
  w.assign(tf.fill(w.shape, NaN));
  const other = policy.param("blocks.0.ff.fc1.weight").dataSync().slice();
  await assert.rejects(dpoTrainStep(policy, reference, optimizer, trainLoader.batches(0).next().value!, 0.1, 7), (err) => {
    assert.ok(err instanceof TrainingError);
    assert.match((err as Error).message, /^training stopped at step 7: the loss is NaN/);
    return true;
  });
  assert.deepEqual(policy.param("blocks.0.ff.fc1.weight").dataSync(), other, "no weight moved");
  optimizer.dispose();
  tf.disposeVariables();
});

test("wasm memory: full DPO of gpt2-medium's size is refused with the way out (LoRA), LoRA DPO with the adapter-off reference fits", () => {
  const n = 406_286_336;
  assert.ok(dpoBytes(n, undefined, n) > dpoBytes(n, undefined, 0));
  const fake = (lora: number | null) => ({ numParams: () => n, lora: lora === null ? null : { numParams: () => lora } }) as unknown as GPTModel;
  // as on the wasm engine with its BLAS matmul (no packed copies of the weights), whatever engine runs this test
  const full = dpoMemoryProblem(fake(null), fake(null), "wasm", true);
  assert.match(full ?? "", /^DPO on 406M parameters needs ~\d+\.\d GiB for the policy's weights, gradients and AdamW state and the reference model's weights before activations, past what the wasm engine's 4 GiB heap can hold: use LoRA DPO instead \(--lora-rank 16/);
  assert.equal(dpoMemoryProblem(fake(7_898_384), "adapter-off", "wasm", true), undefined);
  // without the BLAS matmul XNNPACK keeps a packed copy of every frozen weight: even LoRA passes the budget
  assert.match(dpoMemoryProblem(fake(7_898_384), "adapter-off", "wasm", false) ?? "", /needs ~3\.2 GiB for the frozen weights/);
  assert.equal(dpoMemoryProblem(fake(null), fake(null), "tensorflow"), undefined, "no ceiling on the native engine");
});
