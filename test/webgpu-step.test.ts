// GPT-2 on the course's own WebGPU kernels (lib/model/gpu, lib/train/gpu-trainer.ts, lib/generate/decoder.ts)
// against PyTorch's golden fixtures and against the plain TF.js path on the same engine: loss and every
// gradient, three AdamW steps (losses within 1e-4 relative, weights within 1e-4), the book's training loop,
// greedy and batched and sampled generation token for token, no leaks (tensors and GPU bytes), and the
// dispatch count of a gpt2-small step under its ceiling. On this machine's adapter (lavapipe in CI).
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { GPT2_SMALL, GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { GpuGPT } from "../lib/model/gpu";
import { AdamW } from "../lib/train/adamw";
import { GpuTrainer } from "../lib/train/gpu-trainer";
import { makeStepper } from "../lib/train/stepper";
import { trainModelSimple } from "../lib/train/train";
import { generateIds } from "../lib/generate/generate";
import { generateIdsBatched } from "../lib/generate/batch";
import { InstructionDataset } from "../lib/data/dataset";
import { DataLoader } from "../lib/data/loader";
import { formatInput } from "../lib/data/prompt";
import { keptFromValues } from "../lib/train/loss";
import { BOOK_LR, BOOK_WEIGHT_DECAY } from "../lib/core/book";
import { deterministicModel } from "./helpers/deterministic-weights";
import { golden, maxAbsDiff } from "./helpers/golden";
import { gpuTest } from "./helpers/gpu-kernels";

/** Against PyTorch (float32, other kernels) and against the TF.js path (same engine, other kernels). */
const TOL_TORCH = 1e-3;
const TOL_PLAIN = 1e-4;

const STEP_BATCHES = [
  { inputs: [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], targets: [[2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13]] },
  { inputs: [[20, 21, 22, 23, 24, 25], [30, 31, 32, 33, 34, 35]], targets: [[21, 22, 23, 24, 25, 26], [31, 32, 33, 34, 35, 36]] },
  { inputs: [[40, 41, 42, 43, 0, 0]], targets: [[41, 42, 43, 44, -100, -100]] },
];

/** Three steps with the book's AdamW on one path; the losses and the weights after. */
async function threeSteps(path: "gpu" | "tfjs") {
  const model = deterministicModel(golden("small").config, { tiedHead: false });
  const optimizer = new AdamW(model.params, { lr: BOOK_LR, weightDecay: BOOK_WEIGHT_DECAY });
  const stepper = await makeStepper(model, optimizer, { path, loss: "plain" });
  const losses: number[] = [];
  for (const [i, b] of STEP_BATCHES.entries()) losses.push(await stepper.step(b, i));
  await stepper.sync();
  stepper.dispose();
  const weights = new Map<string, Float32Array>();
  for (const [name, p] of model.params) weights.set(name, (await p.data()) as Float32Array);
  optimizer.dispose();
  model.dispose();
  return { losses, weights };
}

for (const name of ["small", "vocab"]) {
  gpuTest(`${name}: the GPU path's loss and every gradient match PyTorch within ${TOL_TORCH}`, async () => {
    const g = golden(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const B = g.inputs.length;
    const kept = keptFromValues(g.targets.flat(), g.config.vocabSize, "test");
    const loss = await GpuGPT.for(model).loss(g.inputs.flat(), B, g.inputs[0].length, kept);
    // one step with lr 0: the gradients are computed, nothing moves
    const optimizer = new AdamW(model.params, { lr: 0, weightDecay: 0 });
    const trainer = await GpuTrainer.create(model, optimizer);
    const stepLoss = await trainer.step({ inputs: g.inputs, targets: g.targets }, 0);
    const grads = await trainer.gradients();
    let worst = 0;
    for (const [param, want] of Object.entries(g.grads)) {
      const got = grads.get(param) as Float32Array;
      worst = Math.max(worst, maxAbsDiff(got.slice(0, want.first.length), want.first));
      const norm = Math.sqrt(got.reduce((s, x) => s + x * x, 0));
      assert.ok(Math.abs(norm - want.norm) <= TOL_TORCH * Math.max(1, want.norm), `${param}: gradient norm ${norm} vs ${want.norm}`);
    }
    console.log(`# ${name} on the GPU path: |loss - torch| ${Math.abs(loss - g.loss).toExponential(2)}, max |grad - torch| ${worst.toExponential(2)}`);
    assert.ok(Math.abs(loss - g.loss) < TOL_TORCH, `loss ${loss} vs torch ${g.loss}`);
    assert.equal(stepLoss, loss);
    assert.ok(worst < TOL_TORCH, `gradients differ from torch's by ${worst}`);
    trainer.dispose();
    optimizer.dispose();
    model.dispose();
  });

  gpuTest(`${name}: greedy generation on the GPU cache gives PyTorch's tokens; batched and sampled give the TF.js path's`, async () => {
    const g = golden(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const maxNewTokens = g.greedy[0].length - g.prompt[0].length;
    assert.deepEqual(await generateIds(model, g.prompt, { maxNewTokens, contextSize: g.config.contextLength, kvCache: true }), g.greedy);
    const prompts = [[1, 2, 3], [5, 6, 7, 8, 9, 10, 11], [4], [9, 9, 9, 9]];
    const runs = async () => ({
      batched: await generateIdsBatched(model, prompts, { maxNewTokens: 6, eosId: 3, batchSize: 3 }),
      sampled: await generateIds(model, prompts.slice(1, 2), { maxNewTokens: 6, kvCache: true, temperature: 1.5, topK: 5, seed: 7 }),
    });
    const onGpu = await runs();
    process.env.COURSE_GPU_PATH = "0";
    try {
      assert.deepEqual(onGpu, await runs());
    } finally {
      delete process.env.COURSE_GPU_PATH;
    }
    model.dispose();
  });
}

gpuTest(`three AdamW steps on the GPU path give the TF.js path's losses (${TOL_PLAIN} relative) and weights (${TOL_PLAIN})`, async () => {
  const plain = await threeSteps("tfjs");
  const gpu = await threeSteps("gpu");
  console.log(`# losses: TF.js ${plain.losses.map((l) => l.toFixed(6)).join(", ")}; GPU path ${gpu.losses.map((l) => l.toFixed(6)).join(", ")}`);
  plain.losses.forEach((l, i) => assert.ok(Math.abs(gpu.losses[i] - l) <= TOL_PLAIN * Math.abs(l), `step ${i}: ${gpu.losses[i]} vs ${l}`));
  let worst = 0;
  let where = "";
  for (const [name, w] of plain.weights) {
    const d = maxAbsDiff(gpu.weights.get(name) as Float32Array, w);
    if (d > worst) [worst, where] = [d, name];
  }
  console.log(`# max |weight(GPU path) - weight(TF.js)| after 3 steps: ${worst.toExponential(2)} (${where})`);
  assert.ok(worst < TOL_PLAIN, `weights differ by ${worst} (${where})`);
});

gpuTest("the book's training loop on the GPU path: the TF.js path's history, a resumable optimizer, no leaks", async () => {
  const cfg: GPTConfig = { vocabSize: 50257, contextLength: 64, embDim: 16, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true };
  const entries = Array.from({ length: 14 }, (_, i) => ({ instruction: `Add ${i} and ${i + 1}.`, input: i % 2 ? "" : `${i}`, output: `The sum is ${2 * i + 1}.` }));
  const run = async (path: "gpu" | "tfjs") => {
    const collateOptions = { allowedMaxLength: cfg.contextLength };
    const trainLoader = new DataLoader(new InstructionDataset(entries.slice(0, 12)), { batchSize: 4, shuffle: true, dropLast: true, seed: 123, collateOptions });
    const valLoader = new DataLoader(new InstructionDataset(entries.slice(12)), { batchSize: 4, collateOptions });
    const model = new GPTModel(cfg, { seed: 3 });
    const optimizer = new AdamW(model.params, { lr: 5e-3, weightDecay: 0.1 });
    const samples: string[] = [];
    const res = await trainModelSimple(model, trainLoader, valLoader, optimizer, {
      numEpochs: 2, evalFreq: 2, evalIter: 1, startContext: formatInput(entries[12]), sampleTokens: 4, path, log: () => {},
      onEpochEnd: ({ sample }) => void samples.push(sample),
    });
    const state = await optimizer.exportState();
    const head = (await model.values("outHead.weight")).slice(0, 32);
    optimizer.dispose();
    model.dispose();
    return { res, samples, step: state.step, m: state.m["blocks.0.ff.fc1.weight"].data.slice(0, 32), head };
  };
  const before = tf.memory().numTensors;
  const plain = await run("tfjs");
  const gpu = await run("gpu");
  assert.equal(tf.memory().numTensors, before, "a run left tensors behind");
  assert.deepEqual(gpu.res.steps, plain.res.steps);
  assert.ok(maxAbsDiff(gpu.res.trainLosses, plain.res.trainLosses) < 1e-3, `train losses ${gpu.res.trainLosses} vs ${plain.res.trainLosses}`);
  assert.ok(maxAbsDiff(gpu.res.valLosses, plain.res.valLosses) < 1e-3, `val losses ${gpu.res.valLosses} vs ${plain.res.valLosses}`);
  assert.deepEqual(gpu.samples, plain.samples, "the epoch-end samples (generated from the synced model)");
  assert.equal(gpu.step, plain.step, "AdamW's step count");
  assert.ok(maxAbsDiff(gpu.m, plain.m) < 1e-4, "AdamW's moments came back from the GPU");
  assert.ok(maxAbsDiff(gpu.head, plain.head) < 1e-3, "the weights came back from the GPU");
});

gpuTest("a GPU step and GPU generation leave no tensors and no GPU bytes behind", async (rt) => {
  const g = golden("small");
  const model = deterministicModel(g.config, { tiedHead: false });
  const optimizer = new AdamW(model.params, { lr: 1e-3 });
  const trainer = await GpuTrainer.create(model, optimizer);
  await trainer.step(STEP_BATCHES[0], 0); // warm-up: the activations are made at the first batch of a size
  const tensors = tf.memory().numTensors;
  const bytes = rt.bytesAllocated;
  for (let i = 1; i < 4; i++) await trainer.step(STEP_BATCHES[i % 2], i);
  assert.equal(tf.memory().numTensors, tensors, "steps made tensors");
  assert.equal(rt.bytesAllocated, bytes, "steps leaked GPU buffers");
  await trainer.sync();
  trainer.dispose();
  const afterTraining = rt.bytesAllocated;
  const generate = () => generateIdsBatched(model, [[1, 2], [3, 4, 5]], { maxNewTokens: 4, eosId: 7 });
  await generate();
  const warm = rt.bytesAllocated;
  for (let i = 0; i < 3; i++) await generate();
  assert.equal(rt.bytesAllocated, warm, "generation leaked GPU buffers");
  assert.ok(warm >= afterTraining);
  model.dispose(); // frees its GPU copy too
  assert.ok(rt.bytesAllocated < afterTraining, "the model's GPU copy went with it");
  optimizer.dispose();
});

/** The ceiling the issue sets for a gpt2-small step (forward, backward, AdamW); it does not depend on the GPU. */
const GPT2_SMALL_DISPATCH_CEILING = 600;

gpuTest(`a gpt2-small step takes at most ${GPT2_SMALL_DISPATCH_CEILING} dispatches (its tables split to fit 128 MiB buffers where the device asks)`, async () => {
  const model = new GPTModel(GPT2_SMALL, { init: "zeros" });
  const optimizer = new AdamW(model.params, { lr: BOOK_LR, weightDecay: BOOK_WEIGHT_DECAY });
  const trainer = await GpuTrainer.create(model, optimizer);
  // a short batch: the count depends on the shape only through the head's blocks of rows (1 here, as for most book batches)
  const loss = await trainer.step({ inputs: [[1, 2, 3, 4], [5, 6, 7, 8]], targets: [[2, 3, 4, 5], [6, 7, 8, -100]] }, 0);
  console.log(`# gpt2-small on the GPU path: ${trainer.lastDispatches} dispatches a step (recorded in ${trainer.lastRecordMs.toFixed(1)} ms), vocabulary blocks ${model.tables.blocks.length}, loss ${loss}`);
  assert.ok(Math.abs(loss - Math.log(GPT2_SMALL.vocabSize)) < 1e-3, `zero weights predict uniformly: loss ${loss} vs ln V`);
  assert.ok(trainer.lastDispatches <= GPT2_SMALL_DISPATCH_CEILING, `${trainer.lastDispatches} dispatches`);
  trainer.dispose();
  optimizer.dispose();
  model.dispose();
});

gpuTest("a GPU run resumed from the optimizer's exported state continues exactly (the moments go back to the GPU)", async () => {
  const g = golden("small");
  const run = async (resume: boolean) => {
    const model = deterministicModel(g.config, { tiedHead: false });
    let optimizer = new AdamW(model.params, { lr: 1e-3, weightDecay: 0.1 });
    let trainer = await GpuTrainer.create(model, optimizer);
    const losses = [await trainer.step(STEP_BATCHES[0], 0)];
    if (resume) {
      await trainer.sync();
      trainer.dispose();
      const state = await optimizer.exportState();
      optimizer.dispose();
      optimizer = new AdamW(model.params, { lr: 1e-3, weightDecay: 0.1 });
      optimizer.importState(state);
      trainer = await GpuTrainer.create(model, optimizer);
    }
    losses.push(await trainer.step(STEP_BATCHES[1], 1), await trainer.step(STEP_BATCHES[0], 2));
    await trainer.sync();
    trainer.dispose();
    const w = (await model.values("blocks.1.ff.fc2.weight")).slice(0, 64);
    optimizer.dispose();
    model.dispose();
    return { losses, w };
  };
  const straight = await run(false);
  const resumed = await run(true);
  assert.deepEqual(resumed.losses, straight.losses);
  assert.deepEqual(resumed.w, straight.w);
});
