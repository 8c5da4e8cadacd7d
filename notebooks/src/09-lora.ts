// %% [markdown]
// # 09 · Exercise 7.4: parameter-efficient fine-tuning with LoRA
//
// *Chapter 7, exercise 7.4, and appendix E of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Notebook 05 fine-tuned *every* weight of the model. This notebook does what exercise 7.4 asks instead: it freezes
// the pretrained weights and trains a small low-rank update beside each linear layer (LoRA, low-rank adaptation).
// It covers:
//
// 1. why LoRA, and what it saves;
// 2. the LoRA layer written out in a cell, and checked against the library's `LoRALayer`;
// 3. the parameter counts the book prints (gpt2-medium: 406,286,336 trainable before, 7,898,384 with LoRA);
// 4. a LoRA fine-tuning run, and its loss curves next to a full fine-tune's from the same start;
// 5. the memory a training step needs with and without LoRA, measured;
// 6. saving: the model merged into a plain GPT-2 folder, and the adapter alone beside it.
//
// ## Why LoRA
//
// Full fine-tuning keeps, for every weight, its gradient and AdamW's two moment estimates: four float32 copies of
// the model besides the weights themselves. For gpt2-medium (406M values with its own output head) that is
// 6 GB before a single activation, more than the WebAssembly engine's 4 GiB heap can hold at all.
//
// LoRA (Hu et al., 2021) rests on the observation that the *change* fine-tuning makes to a weight matrix W (in × out)
// has low rank: it can be written as the product of a tall matrix A (in × r) and a wide one B (r × out) with r much
// smaller than in and out. So the layer computes
//
//     y = x W + b + (alpha / r) · x A B
//
// with W and b frozen. A starts random and B at zero, so before the first step the model computes exactly what the
// pretrained one did. Only A and B are trained: r·(in + out) values per layer instead of in·out, and only they have
// gradients and optimizer state. After training, (alpha / r)·A B can be added to W once ("merged"), and the result
// is an ordinary GPT-2 again, as fast as before.
//
// `alpha` scales the update. The book's repository divides it by the rank (since September 2025; the printed
// appendix multiplied by alpha alone, which at rank 16 equals alpha 256 here), so that changing the rank does not
// change how large the update starts out.
//
// **The outputs saved in this notebook come from the offline tiny model, from random weights, in the full setting
// (all 935 training entries, 2 epochs).** With GPT-2 weights in the cache, the same cells fine-tune pretrained
// gpt2-medium, as the exercise does (on a native engine; on WebAssembly, see the memory section).

// %% tags=["settings"]
import { BOOK_LORA_ALPHA, BOOK_LORA_RANK } from "@course/lib";
const EPOCHS = 2;
const QUICK = process.env.COURSE_QUICK === "1";
const TRAIN_LIMIT: number | undefined = QUICK ? 120 : undefined;
const RANK = BOOK_LORA_RANK; // exercise 7.4: rank 16
const ALPHA = BOOK_LORA_ALPHA; // and alpha 16
console.log(`epochs: ${EPOCHS}; training entries: ${TRAIN_LIMIT ?? "all"}${QUICK ? " (quick setting, COURSE_QUICK=1)" : ""}; LoRA rank ${RANK}, alpha ${ALPHA}`);

// %%
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  initEngine, loadInstructionData, splitData, formatInput, chooseModel, InstructionDataset, DataLoader, AdamW,
  RANDOM_INIT_LR, trainModelSimple, trainStep, runProgress, lossPlotFigure, showPlot, showTable,
  saveGPT2Directory, saveLoRAAdapter, loadGPT2Directory, loadLoRAAdapter, calcLossBatch, countParams, countLoRAParams,
  formatLoRACounts, kaimingUniformBound, GPTModel, GPT2_MEDIUM, TINY, BOOK_BATCH_SIZE, BOOK_SEED, BOOK_LR,
  BOOK_WEIGHT_DECAY, BOOK_EVAL_FREQ, BOOK_EVAL_ITER, TrainHistory,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## The LoRA layer, written out
//
// The book's `LoRALayer` holds A and B and computes the update; `LinearWithLoRA` adds it to a frozen linear
// layer's output. A is initialised as PyTorch's `nn.Linear` initialises its weights, `kaiming_uniform_(a=√5)`:
// uniform in ±gain·√(3 / fan_in) with gain √(2 / (1 + a²)) = √(1/3). For a 2-D tensor torch takes fan_in from the
// *second* axis, which for A (in × r) is r: the entries of A are uniform in ±1/√r.

// %% tags=["layer"]
class LoRALayerCell {
  readonly A: tf.Variable;
  readonly B: tf.Variable;
  constructor(inDim: number, outDim: number, readonly rank: number, readonly alpha: number, seed: number) {
    const bound = 1 / Math.sqrt(rank); // kaiming_uniform_(a=√5) on A (in, r): ±1/√r
    this.A = tf.variable(tf.randomUniform([inDim, rank], -bound, bound, "float32", seed)); // (in, r)
    this.B = tf.variable(tf.zeros([rank, outDim])); // (r, out): zero, so the update starts at 0
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.mul(tf.matMul(tf.matMul(x, this.A), this.B), this.alpha / this.rank); // (N, in) @ (in, r) @ (r, out) · alpha/r
  }
}

class LinearWithLoRACell {
  readonly lora: LoRALayerCell;
  constructor(readonly linear: { weight: tf.Variable; bias: tf.Variable | null }, rank: number, alpha: number, seed: number) {
    const [inDim, outDim] = linear.weight.shape;
    this.lora = new LoRALayerCell(inDim, outDim, rank, alpha, seed);
  }
  forward(x: tf.Tensor): tf.Tensor {
    const base = tf.matMul(x, this.linear.weight); // the frozen layer, x W + b
    return tf.add(this.linear.bias ? tf.add(base, this.linear.bias) : base, this.lora.forward(x));
  }
}
console.log(`A's bound at rank ${RANK}: cell ${(1 / Math.sqrt(RANK)).toFixed(6)}, library ${kaimingUniformBound([768, RANK]).toFixed(6)}`);

// %% [markdown]
// The library's version lives in `lib/model/lora.ts`, and `GPTModel.applyLoRA` puts one beside every linear layer
// (the book's `replace_linear_with_lora`). To check the cell against it, wrap the first feed-forward layer of a
// small model both ways, give both the same A and a non-zero B (with B = 0 any two versions would agree), and
// compare the outputs.

// %% tags=["layer-check"]
const probe = new GPTModel({ ...TINY, nLayers: 1 }, { seed: BOOK_SEED });
const fc1 = probe.linears().get("blocks.0.ff.fc1")!;
const cell = new LinearWithLoRACell(fc1, 4, 8, 7);
cell.lora.B.assign(tf.randomNormal(cell.lora.B.shape, 0, 0.5, "float32", 11));
const libraryAdapter = probe.applyLoRA({ rank: 4, alpha: 8, targets: ["blocks.0.ff.fc1"] });
const libraryLayer = libraryAdapter.layers.get("blocks.0.ff.fc1")!;
libraryLayer.A.assign(cell.lora.A);
libraryLayer.B.assign(cell.lora.B);
const xProbe = tf.randomNormal([5, TINY.embDim], 0, 1, "float32", 3); // 5 tokens' vectors
const fromCell = cell.forward(xProbe);
const fromLibrary = fc1.apply(xProbe); // the library's Linear, with its LoRA attached
const maxDiff = tf.max(tf.abs(tf.sub(fromCell, fromLibrary))).dataSync()[0];
const updateSize = tf.max(tf.abs(cell.lora.forward(xProbe))).dataSync()[0];
console.log(`largest LoRA update in the output: ${updateSize.toFixed(4)}`);
console.log(`largest difference between the cell and the library: ${maxDiff.toExponential(2)}`);
console.log(`the cell's LinearWithLoRA agrees with the library's: ${maxDiff < 1e-5 && updateSize > 0.1}`);
tf.dispose([xProbe, fromCell, fromLibrary, cell.lora.A, cell.lora.B]);
probe.dispose();

// %% [markdown]
// ## How many parameters LoRA trains
//
// The book counts the trainable parameters before, after freezing every weight (none), and after
// `replace_linear_with_lora` adds A and B to every linear layer, the output head included. For gpt2-medium,
// from its config alone (no model is built, so this runs anywhere):

// %% tags=["counts-medium"]
console.log(formatLoRACounts(countParams(GPT2_MEDIUM), countLoRAParams(GPT2_MEDIUM, RANK)));
console.log(`LoRA trains ${((100 * countLoRAParams(GPT2_MEDIUM, RANK)) / countParams(GPT2_MEDIUM)).toFixed(2)}% of gpt2-medium's values`);

// %% [markdown]
// ## Data and the two models
//
// The data and loaders of notebook 05. Then the model as in notebook 04 (pretrained GPT-2 medium when it is in the
// cache, otherwise the tiny model from random weights), twice from the same start: one to fine-tune fully, one to
// fine-tune with LoRA.

// %% tags=["data"]
const { train: allTrain, val } = splitData(await loadInstructionData());
const train = TRAIN_LIMIT === undefined ? allTrain : allTrain.slice(0, TRAIN_LIMIT);
console.log(`train ${train.length} entries, validation ${val.length}`);

// %% tags=["model"]
const fullRun = await chooseModel({ model: "auto" });
const loraRun = await chooseModel({ model: "auto", log: () => {} });
console.log(`model: ${loraRun.name}, ${loraRun.pretrained ? "pretrained" : "NOT pretrained"}`);
const before = loraRun.model.numTrainableParams();
loraRun.model.applyLoRA({ rank: RANK, alpha: ALPHA, seed: BOOK_SEED });
console.log(formatLoRACounts(before, loraRun.model.numTrainableParams()));

// %% [markdown]
// ## Fine-tuning, with LoRA and in full
//
// The same loop, data, learning rate and schedule for both (`trainModelSimple`, notebook 05). The only difference is
// what the optimizer is given: every parameter, or the A and B matrices alone (`model.trainableParams()`); the
// frozen weights get no gradients at all. The learning rate is the book's 5e-5 for a pretrained model and the
// library's `RANDOM_INIT_LR` for the random tiny model (notebook 05 explains why).

// %% tags=["train"]
const LR = loraRun.pretrained ? BOOK_LR : RANDOM_INIT_LR;
const collateOptions = { allowedMaxLength: loraRun.model.cfg.contextLength };
const loaders = () => ({
  trainLoader: new DataLoader(new InstructionDataset(train), { batchSize: BOOK_BATCH_SIZE, shuffle: true, dropLast: true, seed: BOOK_SEED, collateOptions }),
  valLoader: new DataLoader(new InstructionDataset(val), { batchSize: BOOK_BATCH_SIZE, collateOptions }),
});
async function fineTune(model: GPTModel, label: string): Promise<{ history: TrainHistory; minutes: number; optimizer: AdamW }> {
  const { trainLoader, valLoader } = loaders();
  const optimizer = new AdamW(model.trainableParams(), { lr: LR, weightDecay: BOOK_WEIGHT_DECAY });
  const progress = runProgress(label);
  const started = Date.now();
  const history = await trainModelSimple(model, trainLoader, valLoader, optimizer, {
    numEpochs: EPOCHS,
    evalFreq: BOOK_EVAL_FREQ,
    evalIter: BOOK_EVAL_ITER,
    startContext: formatInput(val[0]),
    log: (line) => progress.log(`${label}: ${line}`),
    onStep: progress.onStep,
  });
  progress.done();
  const minutes = (Date.now() - started) / 60000;
  console.log(`${label}: training completed in ${minutes.toFixed(2)} minutes.`);
  return { history, minutes, optimizer };
}
const lora = await fineTune(loraRun.model, "LoRA");
const full = await fineTune(fullRun.model, "full");

// %% [markdown]
// ## The loss curves, side by side

// %% tags=["loss-plot"]
const loraFigure = lossPlotFigure(lora.history, { numEpochs: EPOCHS });
const fullFigure = lossPlotFigure(full.history, { numEpochs: EPOCHS });
const rename = (trace: Record<string, unknown>, prefix: string, color: string) =>
  ({ ...trace, name: `${prefix}: ${String(trace.name).toLowerCase()}`, line: { ...(trace.line as object), color } });
await showPlot({
  data: [
    ...fullFigure.data.slice(0, 2).map((t) => rename(t as Record<string, unknown>, "Full fine-tune", "#1f77b4")),
    ...loraFigure.data.map((t, i) => (i < 2 ? rename(t as Record<string, unknown>, `LoRA (rank ${RANK})`, "#d62728") : t)),
  ],
  layout: { ...loraFigure.layout, title: { text: `Full fine-tuning and LoRA (${loraRun.name}${QUICK ? ", quick setting" : ""})`, y: 0.98, yanchor: "top" } },
});
const last = (xs: number[]) => xs[xs.length - 1];
showTable(
  [
    { run: "full fine-tune", "trainable parameters": fullRun.model.numTrainableParams().toLocaleString("en-US"), "train loss (first → last)": `${full.history.trainLosses[0].toFixed(3)} → ${last(full.history.trainLosses).toFixed(3)}`, "val loss (first → last)": `${full.history.valLosses[0].toFixed(3)} → ${last(full.history.valLosses).toFixed(3)}`, minutes: full.minutes.toFixed(2) },
    { run: `LoRA rank ${RANK}`, "trainable parameters": loraRun.model.numTrainableParams().toLocaleString("en-US"), "train loss (first → last)": `${lora.history.trainLosses[0].toFixed(3)} → ${last(lora.history.trainLosses).toFixed(3)}`, "val loss (first → last)": `${lora.history.valLosses[0].toFixed(3)} → ${last(lora.history.valLosses).toFixed(3)}`, minutes: lora.minutes.toFixed(2) },
  ],
  { caption: "Both runs, same data and schedule" },
);
console.log(`LoRA: train loss ${lora.history.trainLosses[0].toFixed(3)} -> ${last(lora.history.trainLosses).toFixed(3)}, val loss ${lora.history.valLosses[0].toFixed(3)} -> ${last(lora.history.valLosses).toFixed(3)}`);
console.log(`full: train loss ${full.history.trainLosses[0].toFixed(3)} -> ${last(full.history.trainLosses).toFixed(3)}, val loss ${full.history.valLosses[0].toFixed(3)} -> ${last(full.history.valLosses).toFixed(3)}`);

// %% [markdown]
// **What the curves say.** With pretrained gpt2-medium, the book's exercise solution reports LoRA's losses close to
// full fine-tuning's (train 0.308, validation 0.652 after 2 epochs): the pretrained weights already hold what the
// model needs, and a low-rank nudge teaches it the format. **In the run saved here** (the tiny model from random
// weights, full setting) the two runs end close together too, LoRA a little behind: training loss from about 10.3
// to 2.2 (LoRA) and 1.7 (full), validation loss to 2.56 and 2.23, with LoRA training 880 thousand values against
// 13.4 million. That says less than it seems: the tiny model's layers are only 128 wide, so rank 16 restricts them
// little, and most of its values are the two embedding tables, which LoRA leaves frozen.
// The first evaluation comes after one step, which is why the two curves do not start at the same point.
//
// ## The memory LoRA saves, measured
//
// One more training step on the same batch for each model, with TF.js's profiler: the tensor memory held before
// the step (weights, and the optimizer's moments), the peak during it (gradients and activations on top), and
// the optimizer state alone.

// %% tags=["memory"]
const memLoader = loaders().trainLoader;
const memBatch = memLoader.batches(0).next().value!;
const MiB = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
async function measure(model: GPTModel, optimizer: AdamW) {
  const resting = tf.memory().numBytes;
  const profile = await tf.profile(() => trainStep(model, optimizer, memBatch.inputs, memBatch.targets, 0));
  const state = await optimizer.exportState();
  const moments = [...Object.values(state.m), ...Object.values(state.v)].reduce((s, t) => s + 4 * t.data.length, 0);
  return { resting, peak: profile.peakBytes, above: profile.peakBytes - resting, moments };
}
const memLoRA = await measure(loraRun.model, lora.optimizer);
const memFull = await measure(fullRun.model, full.optimizer);
tf.dispose([memBatch.inputs, memBatch.targets]);
showTable(
  [
    { run: "full fine-tune", "AdamW moments": MiB(memFull.moments), "peak above resting (gradients, activations)": MiB(memFull.above), "peak tensor memory": MiB(memFull.peak) },
    { run: `LoRA rank ${RANK}`, "AdamW moments": MiB(memLoRA.moments), "peak above resting (gradients, activations)": MiB(memLoRA.above), "peak tensor memory": MiB(memLoRA.peak) },
  ],
  { caption: "One training step, measured by tf.profile (both models are alive, so the peaks include each other's weights)" },
);
console.log(`AdamW moments: ${MiB(memFull.moments)} full, ${MiB(memLoRA.moments)} LoRA (${(memFull.moments / memLoRA.moments).toFixed(0)}x less)`);
console.log(`peak above resting: ${MiB(memFull.above)} full, ${MiB(memLoRA.above)} LoRA`);
console.log(`LoRA saves ${MiB(memFull.moments - memLoRA.moments + memFull.above - memLoRA.above)} in a step`);
lora.optimizer.dispose();
full.optimizer.dispose();
fullRun.model.dispose();

// %% [markdown]
// On the tiny model most of its 13M values are the two 50,257-row embedding tables; LoRA leaves the token and position
// embeddings frozen and untouched (the book wraps linear layers only), so their gradients and moments disappear
// too. For gpt2-medium the same accounting is what lets it train at all on the WebAssembly engine: the 406M frozen
// weights once (1.5 GiB), and gradients and moments for 7.9M values only. The activations are the other half:
// measured here, a LoRA step of gpt2-medium on wasm ran out of the 4 GiB heap even at batch 4 × 63 tokens, because
// TF.js keeps every block's intermediate tensors for the backward pass. With activation recomputation
// (`model.recomputeActivations = true`, `lib/model/recompute.ts`: each block keeps only its input and runs again in
// the backward pass) the book's batch 8 fits, the longest batch of the training set (8 × 91 tokens) included, at a
// peak heap of 2.3 GiB. `npm run finetune -- --lora-rank 16` turns it on by itself on wasm;
// `npm run bench -- --config gpt2-medium --lora-rank 16 --backend wasm` measures it (the README has the figures).
//
// ## Saving: merged, and the adapter alone
//
// `saveGPT2Directory` saves a LoRA model *merged*: every wrapped weight becomes W + (alpha / r)·A B, and the folder
// is a plain GPT-2 that notebook 06, `npm run evaluate`, `npm run generate` and Hugging Face's `transformers` load
// unchanged. `saveLoRAAdapter` saves A and B alone, with the rank, alpha and layer names; applied to the base model
// again (`loadLoRAAdapter`), it gives the same model. (`npm run finetune -- --lora-rank 16` saves both, into
// `model/` and `lora-adapter/`.)

// %% tags=["save"]
const RUN_DIR = path.resolve("..", "runs", "notebook-lora");
await saveGPT2Directory(loraRun.model, path.join(RUN_DIR, "model"));
await saveLoRAAdapter(loraRun.model, path.join(RUN_DIR, "lora-adapter"));
const sizeOf = (dir: string) => fs.readdirSync(dir).reduce((s, f) => s + fs.statSync(path.join(dir, f)).size, 0);
console.log(`merged model: ${MiB(sizeOf(path.join(RUN_DIR, "model")))}; adapter alone: ${MiB(sizeOf(path.join(RUN_DIR, "lora-adapter")))}`);
const evalBatch = loaders().valLoader.batches(0).next().value!;
const lossNow = calcLossBatch(loraRun.model, evalBatch.inputs, evalBatch.targets).dataSync()[0];
const reloaded = await loadGPT2Directory(path.join(RUN_DIR, "model"));
const lossMerged = calcLossBatch(reloaded, evalBatch.inputs, evalBatch.targets).dataSync()[0];
console.log(`validation batch loss: LoRA model ${lossNow.toFixed(5)}, merged and reloaded ${lossMerged.toFixed(5)}`);
console.log(`the merged model computes what the LoRA model does: ${Math.abs(lossNow - lossMerged) < 1e-4}`);
tf.dispose([evalBatch.inputs, evalBatch.targets]);
reloaded.dispose();
loraRun.model.dispose();

// %% [markdown]
// ## What comes next
//
// The merged model in `runs/notebook-lora/model/` is an ordinary fine-tuned GPT-2: notebook 06's cells (with
// `runs/notebook-lora/model` as the folder) and `npm run evaluate -- --weights runs/notebook-lora/model` score it
// like the fully fine-tuned one. On the command line the whole exercise is one command:
// `npm run finetune -- --lora-rank 16 --lora-alpha 16`.
