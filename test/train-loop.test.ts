// trainModelSimple: the book's evaluation schedule and log line, falling loss, no tensor
// leaks per step, a clear error on a NaN loss, and an exact resume from a saved position.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTModel } from "../lib/model/gpt";
import type { GPTConfig } from "../lib/model/config";
import { InstructionDataset } from "../lib/data/dataset";
import { DataLoader } from "../lib/data/loader";
import { formatInput } from "../lib/data/prompt";
import type { InstructionEntry } from "../lib/data/instruction-data";
import { AdamW } from "../lib/train/adamw";
import type { ArrayBatch, ScheduleEvent } from "../lib/train/schedule";
import { EVAL_ORDER_OFFSET, formatEvalLine, readArrays, trainModelSimple, trainSchedule, TrainingError, TrainPosition, TrainHistory } from "../lib/train/train";

// GPT-2's vocabulary (the data uses its token ids) but a very narrow, shallow model
const MICRO: GPTConfig = { vocabSize: 50257, contextLength: 128, embDim: 8, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true };

const entries: InstructionEntry[] = Array.from({ length: 14 }, (_, i) => ({
  instruction: `Add ${i} and ${i + 1}.`,
  input: i % 2 ? "" : `${i}`,
  output: `The sum is ${2 * i + 1}.`,
}));
const train = entries.slice(0, 12);
const val = entries.slice(12);

function loaders() {
  const collateOptions = { allowedMaxLength: MICRO.contextLength };
  return {
    trainLoader: new DataLoader(new InstructionDataset(train), { batchSize: 4, shuffle: true, dropLast: true, seed: 123, collateOptions }),
    valLoader: new DataLoader(new InstructionDataset(val), { batchSize: 4, collateOptions }),
  };
}

before(async () => {
  await initEngine({ log: () => {} });
});

test("the book's log line format", () => {
  assert.equal(formatEvalLine(0, 5, 1.1744, 1.1026), "Ep 1 (Step 000005): Train loss 1.174, Val loss 1.103");
});

test("evaluates at global steps 0, evalFreq, 2*evalFreq… (book schedule), loss falls, no leaks per step", async () => {
  const model = new GPTModel(MICRO, { seed: 1 });
  const opt = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
  const { trainLoader, valLoader } = loaders();
  const lines: string[] = [];
  const tensorsAfterStep: number[] = [];
  const res = await trainModelSimple(model, trainLoader, valLoader, opt, {
    numEpochs: 2,
    evalFreq: 2,
    evalIter: 1,
    startContext: formatInput(val[0]),
    sampleTokens: 3,
    log: (l) => lines.push(l),
    onStep: () => tensorsAfterStep.push(tf.memory().numTensors),
  });
  // 12 entries / batch 4 = 3 steps per epoch, 6 in all: evaluations after steps 0, 2, 4
  assert.deepEqual(res.steps, [0, 2, 4]);
  assert.equal(res.trainLosses.length, 3);
  assert.equal(res.valLosses.length, 3);
  assert.equal(res.position.globalStep, 5);
  assert.equal(res.position.epoch, 2);
  assert.match(lines[0], /^Ep 1 \(Step 000000\): Train loss \d+\.\d{3}, Val loss \d+\.\d{3}$/);
  assert.match(lines.find((l) => l.includes("Step 000004"))!, /^Ep 2 /);
  // the sample after each epoch: the prompt's start, on one line
  const samples = lines.filter((l) => l.startsWith("Below is an instruction"));
  assert.equal(samples.length, 2);
  assert.ok(!samples[0].includes("\n"));
  // tokens seen grows by the padded batch size
  assert.ok(res.tokensSeen[0] > 0 && res.tokensSeen[2] > res.tokensSeen[1]);
  assert.ok(res.trainLosses[2] < res.trainLosses[0], `train loss did not fall: ${res.trainLosses}`);
  // the first step creates the optimizer's moment buffers; after that the count is flat
  assert.deepEqual(new Set(tensorsAfterStep.slice(1)).size, 1, `tensor count per step: ${tensorsAfterStep}`);
  opt.dispose();
  model.dispose();
});

test("trainSchedule: the loop's steps, evaluations and their batches, in order, also from a resumed position", () => {
  const { trainLoader, valLoader } = loaders();
  const opts = { numEpochs: 2, evalFreq: 2, evalIter: 1 };
  const brief = (e: ScheduleEvent<ArrayBatch>) =>
    e.kind === "epochEnd" ? `end ${e.epoch}` : `step ${e.globalStep} (${e.epoch}:${e.batch})` + (e.eval ? ` eval ${e.eval.index}` : "");
  const events = [...trainSchedule(readArrays, trainLoader, valLoader, opts)];
  // 12 entries / batch 4 = 3 steps per epoch; the book evaluates after global steps 0, 2, 4
  assert.deepEqual(events.map(brief), [
    "step 0 (0:0) eval 0", "step 1 (0:1)", "step 2 (0:2) eval 1", "end 0",
    "step 3 (1:0)", "step 4 (1:1) eval 2", "step 5 (1:2)", "end 1",
  ]);
  const steps = events.flatMap((e) => (e.kind === "step" ? [e] : []));
  assert.deepEqual(steps.slice(0, 3).map((e) => e.data), [...trainLoader.arrayBatches(0)]);
  assert.deepEqual(steps.slice(3).map((e) => e.data), [...trainLoader.arrayBatches(1)]);
  // the k-th evaluation: the first evalIter batches of train order EVAL_ORDER_OFFSET + k, and of val
  const third = steps[4].eval!;
  assert.deepEqual([...third.train], [...trainLoader.arrayBatches(EVAL_ORDER_OFFSET + 2)].slice(0, 1));
  assert.deepEqual([...third.val], [...valLoader.arrayBatches(0)].slice(0, 1));
  // resumed after step 3 (epoch 1, batch 1): the rest of the same schedule
  const resumed = [...trainSchedule(readArrays, trainLoader, valLoader, opts, { epoch: 1, batch: 1, globalStep: 3, evalCount: 2 })];
  assert.deepEqual(resumed.map(brief), events.slice(5).map(brief));
});

test("a NaN loss stops training with a TrainingError naming the step", async () => {
  const model = new GPTModel(MICRO, { seed: 1 });
  const head = model.params.get("finalNorm.scale")!;
  head.assign(tf.fill(head.shape, NaN));
  const opt = new AdamW(model.params, { lr: 1e-3 });
  const { trainLoader, valLoader } = loaders();
  const before = tf.memory().numTensors;
  await assert.rejects(
    trainModelSimple(model, trainLoader, valLoader, opt, { numEpochs: 1, evalFreq: 5, evalIter: 1, startContext: "x", log: () => {} }),
    (err: unknown) => err instanceof TrainingError && /step 0: the loss is NaN/.test((err as Error).message),
  );
  assert.equal(tf.memory().numTensors, before, "the failed step leaked tensors");
  opt.dispose();
  model.dispose();
});

test("stopping after epoch 1 and resuming reproduces the uninterrupted run", async () => {
  const opts = { numEpochs: 2, evalFreq: 2, evalIter: 1, startContext: "Hello", sampleTokens: 2, log: () => {} };
  const runA = async () => {
    const model = new GPTModel(MICRO, { seed: 7 });
    const opt = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
    const { trainLoader, valLoader } = loaders();
    const res = await trainModelSimple(model, trainLoader, valLoader, opt, opts);
    opt.dispose();
    model.dispose();
    return res;
  };
  const full = await runA();

  // the interrupted run: stop at the end of epoch 1, keep what a checkpoint would keep
  const model = new GPTModel(MICRO, { seed: 7 });
  const opt = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
  let saved: { position: TrainPosition; history: TrainHistory } | undefined;
  let weights: Map<string, Float32Array> = new Map();
  let optState: Awaited<ReturnType<AdamW["exportState"]>> | undefined;
  const { trainLoader, valLoader } = loaders();
  const first = await trainModelSimple(model, trainLoader, valLoader, opt, {
    ...opts,
    onEpochEnd: async ({ position, history }) => {
      saved = { position, history };
      weights = new Map([...model.params].map(([k, v]) => [k, v.dataSync().slice() as Float32Array]));
      optState = await opt.exportState();
    },
    shouldStop: () => saved !== undefined,
  });
  assert.equal(first.stopped, true); // it went one step into epoch 2: the resume starts from the epoch-1 checkpoint instead
  opt.dispose();
  model.dispose();

  const resumed = new GPTModel(MICRO, { seed: 999 });
  for (const [k, v] of resumed.params) v.assign(tf.tensor(weights.get(k)!, v.shape));
  const opt2 = new AdamW(resumed.params, { lr: 5e-3, weightDecay: 0.1 });
  opt2.importState(optState!);
  const { trainLoader: t2, valLoader: v2 } = loaders();
  const rest = await trainModelSimple(resumed, t2, v2, opt2, { ...opts, resume: saved });
  assert.deepEqual(rest.steps, full.steps);
  assert.deepEqual(rest.tokensSeen, full.tokensSeen);
  for (let i = 0; i < full.trainLosses.length; i++) {
    assert.ok(Math.abs(rest.trainLosses[i] - full.trainLosses[i]) < 1e-5, `train loss ${i}: ${rest.trainLosses[i]} vs ${full.trainLosses[i]}`);
    assert.ok(Math.abs(rest.valLosses[i] - full.valLosses[i]) < 1e-5, `val loss ${i}`);
  }
  opt2.dispose();
  resumed.dispose();
});

test("training with the fused loss and with the plain definition gives the same losses and weights", async () => {
  const run = async (loss: "fused" | "plain") => {
    const model = new GPTModel(MICRO, { seed: 11 });
    const opt = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
    const { trainLoader, valLoader } = loaders();
    const res = await trainModelSimple(model, trainLoader, valLoader, opt, { numEpochs: 2, evalFreq: 2, evalIter: 1, startContext: "Hi", sampleTokens: 2, log: () => {}, loss });
    const weights = [...model.params.values()].map((p) => Array.from(p.dataSync()));
    opt.dispose();
    model.dispose();
    return { res, weights };
  };
  const fused = await run("fused");
  const plain = await run("plain");
  assert.ok(fused.res.trainLosses.length >= 3);
  fused.res.trainLosses.forEach((l, i) => assert.ok(Math.abs(l - plain.res.trainLosses[i]) < 1e-4, `train loss ${i}: ${l} vs ${plain.res.trainLosses[i]}`));
  fused.res.valLosses.forEach((l, i) => assert.ok(Math.abs(l - plain.res.valLosses[i]) < 1e-4, `val loss ${i}: ${l} vs ${plain.res.valLosses[i]}`));
  fused.weights.forEach((w, k) => w.forEach((v, i) => assert.ok(Math.abs(v - plain.weights[k][i]) < 1e-4, `parameter ${k}[${i}]: ${v} vs ${plain.weights[k][i]}`)));
});
