// %% [markdown]
// # 05 · Fine-tuning
//
// *Chapter 7, section 7.6 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Everything comes together: the loaders of notebook 03, the masked loss of notebook 02 and the model of
// notebook 04. This notebook:
//
// 1. fine-tunes the model with the book's training loop, `train_model_simple`: AdamW, a loss evaluation every
//    5 steps, and a sample answer after each epoch, with a progress bar while it runs;
// 2. plots the training and validation loss against epochs and tokens seen;
// 3. looks at what the losses say about overfitting, and at the answers after each epoch;
// 4. saves the fine-tuned model for notebook 06.
//
// ## Settings
//
// `EPOCHS` is the book's `num_epochs = 2`: change it and run the notebook again (the blog post this course
// follows ran 5 to watch the model overfit).
//
// `TRAIN_LIMIT` trains on only the first *n* training entries. Left `undefined`, the notebook trains on all
// 935, as the book does. The **quick** setting, which tests and CI use (set the environment variable
// `COURSE_QUICK=1` before starting Jupyter), trains on 120, so that CI runs it in well under a minute.
//
// How long a run takes depends on the model and the engine. The small offline model on two CPU cores (the
// WebAssembly engine with the machine's OpenBLAS) takes about 2.5 minutes for the book's 2 epochs on all 935
// entries and about 10 for 8 (measured with `npm run finetune`; the README has the figures). Pretrained
// GPT-2 medium is 30 times bigger: train it with a native engine (`@tensorflow/tfjs-node-gpu` on a GPU, or
// `@tensorflow/tfjs-node`), not on WebAssembly.
//
// **The outputs saved in this notebook come from the offline tiny model on all 935 entries, 2 epochs.**

// %%
import "tsx/cjs";

// %% tags=["settings"]
const EPOCHS = 2;
const QUICK = process.env.COURSE_QUICK === "1";
const TRAIN_LIMIT: number | undefined = QUICK ? 120 : undefined;
console.log(`epochs: ${EPOCHS}; training entries: ${TRAIN_LIMIT ?? "all"}${QUICK ? " (quick setting, COURSE_QUICK=1)" : ""}`);

// %%
import * as fs from "node:fs";
import * as path from "node:path";
import {
  initEngine, loadInstructionData, splitData, formatInput, chooseModel, printParamSummary, InstructionDataset,
  DataLoader, AdamW, RANDOM_INIT_LR, trainModelSimple, progressDisplay, ProgressHandle, lossPlotFigure, showPlot, showTable,
  saveGPT2Directory, writeFileAtomic, writeAll, BOOK_BATCH_SIZE, BOOK_SEED, BOOK_LR, BOOK_WEIGHT_DECAY, BOOK_EVAL_FREQ,
  BOOK_EVAL_ITER,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## Data, model and optimizer
//
// The data as in notebook 03: the training loader shuffles (seed 123) and drops its last incomplete batch,
// the validation loader keeps everything in order.

// %% tags=["data"]
const { train: allTrain, val, test } = splitData(await loadInstructionData());
const train = TRAIN_LIMIT === undefined ? allTrain : allTrain.slice(0, TRAIN_LIMIT);
console.log(`train ${train.length} entries, validation ${val.length}, test ${test.length}`);

// %% [markdown]
// The model as in notebook 04: pretrained GPT-2 medium when it is available, otherwise the tiny model from
// random weights (and the banner again, so that nobody mistakes this run's numbers for the book's).

// %% tags=["model"]
const chosen = await chooseModel({ model: "auto" });
const model = chosen.model;
console.log(`model: ${chosen.name}, ${chosen.pretrained ? "pretrained" : "NOT pretrained"}`);
printParamSummary(model);

// %% [markdown]
// The book's optimizer: AdamW with weight decay 0.1 and learning rate 5e-5 (`BOOK_WEIGHT_DECAY` and `BOOK_LR`,
// named once in `lib/core/book.ts` with the book's other settings). That learning rate is for
// *fine-tuning*: small steps that adjust pretrained weights without wrecking what they know. A model starting
// from random weights has nothing to protect and everything to learn, and at 5e-5 its loss would hardly move
// in two epochs; it gets `RANDOM_INIT_LR` = 3e-3 from the library, the rate the command line uses for random starts too
// (chosen so that the tiny model both learns in two epochs and shows overfitting within eight; see below).

// %% tags=["optimizer"]
const LR = chosen.pretrained ? BOOK_LR : RANDOM_INIT_LR;
const collateOptions = { allowedMaxLength: model.cfg.contextLength };
const trainLoader = new DataLoader(new InstructionDataset(train), { batchSize: BOOK_BATCH_SIZE, shuffle: true, dropLast: true, seed: BOOK_SEED, collateOptions });
const valLoader = new DataLoader(new InstructionDataset(val), { batchSize: BOOK_BATCH_SIZE, collateOptions });
const optimizer = new AdamW(model.params, { lr: LR, weightDecay: BOOK_WEIGHT_DECAY });
console.log(`AdamW lr ${LR}, weight decay ${BOOK_WEIGHT_DECAY}; ${trainLoader.numBatches} steps per epoch, ${EPOCHS * trainLoader.numBatches} in all`);

// %% [markdown]
// ## Training
//
// `trainModelSimple` is the book's `train_model_simple`. Every step: the loss of one batch, its gradients,
// an AdamW update. Every 5 steps (the book's `eval_freq`, `BOOK_EVAL_FREQ`), the mean loss of 5 training and
// 5 validation batches (`eval_iter`, `BOOK_EVAL_ITER`), printed as the book prints it. After each epoch, the
// model continues the first validation prompt (50 tokens, greedy): the book's `start_context`. The bar above
// the log moves in place while the loop runs.
//
// The loss is notebook 02's `maskedCrossEntropy`, computed by a faster route (`lib/train/fused-loss.ts`): the
// output head only for the positions that are scored (padding is skipped before the 50,257-wide matmul, not
// after), one softmax whose probabilities also give the gradient, and the head and loss in blocks of 128 rows.
// The numbers are the same (a test checks the loss and every gradient against the plain definition); pass
// `loss: "plain"` to `trainModelSimple` to train with the definition itself, more slowly.

// %% tags=["train"]
let bar: ProgressHandle | undefined;
const samples: { epoch: number; sample: string }[] = [];
const started = Date.now();
const history = await trainModelSimple(model, trainLoader, valLoader, optimizer, {
  numEpochs: EPOCHS,
  evalFreq: BOOK_EVAL_FREQ,
  evalIter: BOOK_EVAL_ITER,
  startContext: formatInput(val[0]),
  onStep: (s) => (bar ??= progressDisplay(s.totalSteps, "fine-tuning")).tick(1, `epoch ${s.epoch + 1}, loss ${s.loss.toFixed(3)}`),
  onEpochEnd: ({ epoch, sample }) => void samples.push({ epoch: epoch + 1, sample }),
});
bar?.done();
const minutes = (Date.now() - started) / 60000;
console.log(`Training completed in ${minutes.toFixed(2)} minutes.`);
optimizer.dispose();

// %% [markdown]
// ## The loss curves
//
// The book's `plot_losses`: training and validation loss against epochs, with the tokens seen on a second axis
// on top. (Interactive in JupyterLab and the classic notebook; a static image on GitHub.)

// %% tags=["loss-plot"]
await showPlot(lossPlotFigure(history, { numEpochs: EPOCHS, title: `Loss during fine-tuning (${chosen.name}${QUICK ? ", quick setting" : ""})` }));

// %% [markdown]
// From random weights, the first steps fall from ln 50257 ≈ 10.8, and that drop squeezes everything after it
// into the bottom of the chart. The same curves with the loss axis cut at a little above the validation loss
// after the first epoch make the later trend visible (skip this for a pretrained model, whose losses start
// near 3):

// %% tags=["loss-zoom"]
const afterEpoch1 = history.valLosses.filter((_, i) => history.epochsAt[i] >= Math.min(1, EPOCHS / 2));
const yMax = 1.25 * Math.max(...afterEpoch1, ...history.trainLosses.slice(-1));
await showPlot(lossPlotFigure(history, { numEpochs: EPOCHS, yRange: [0, yMax], title: `The same, loss axis cut at ${yMax.toFixed(2)}` }));

// %% [markdown]
// The numbers behind the curves, per epoch: the first and last evaluation, and the lowest validation loss.

// %% tags=["summary"]
const n = history.trainLosses.length;
const bestVal = Math.min(...history.valLosses);
const bestAt = history.valLosses.indexOf(bestVal);
showTable(
  Array.from({ length: EPOCHS }, (_, e) => {
    const idx = history.epochsAt.map((x, i) => (x > e && x <= e + 1 ? i : -1)).filter((i) => i >= 0);
    const first = idx[0], last = idx[idx.length - 1];
    return {
      epoch: e + 1,
      evaluations: idx.length,
      "train loss (first → last)": `${history.trainLosses[first].toFixed(3)} → ${history.trainLosses[last].toFixed(3)}`,
      "val loss (first → last)": `${history.valLosses[first].toFixed(3)} → ${history.valLosses[last].toFixed(3)}`,
    };
  }),
  { caption: "Losses per epoch" },
);
console.log(`train loss: ${history.trainLosses[0].toFixed(3)} at the first evaluation, ${history.trainLosses[n - 1].toFixed(3)} at the last`);
console.log(`val loss: ${history.valLosses[0].toFixed(3)} at the first evaluation, ${history.valLosses[n - 1].toFixed(3)} at the last`);
console.log(`lowest val loss: ${bestVal.toFixed(3)} at step ${history.steps[bestAt]} (epoch ${history.epochsAt[bestAt].toFixed(2)})`);

// %% [markdown]
// ## Overfitting
//
// Both losses fall together at first: what the model learns from the training batches (the Alpaca template,
// the `### Response:` header, short common answers, the end-of-text marker) holds for the validation
// entries too. The book stops after two epochs, with both losses still close. The blog post this course
// follows trained for 5 epochs and saw the validation loss turn *up* after the second while the training loss
// kept falling: from then on the model memorises its 935 examples instead of learning what generalises, and
// more training makes its answers to new instructions worse, not better. The lowest validation loss marks
// where to stop.
//
// **In the run saved here** (the tiny model from random weights, all 935 training entries, 2 epochs), both
// losses fall steeply from ln 50257 ≈ 10.8 in the first steps, then slowly: to 1.678 (train) and 2.212
// (validation) at the last evaluation. The validation loss is still falling at the end of epoch 2 (its lowest,
// 2.207, comes at step 225), but it has stayed above the training loss since the first epoch and the gap has
// grown to about 0.5: the beginning of the pattern above. Two epochs are too early to see it turn. Set
// `EPOCHS = 8` (about ten minutes here) and watch the zoomed chart: in the README's 8-epoch run of this same
// model the validation loss bottoms out around epoch 4 (2.03) and climbs to 2.13 by epoch 8, while the
// training loss keeps falling, to 0.55. Your numbers will differ from the book's in any case: a different
// random number generator orders the batches differently, and offline the model is not GPT-2.
//
// ## The answer after each epoch
//
// The continuation of the first validation prompt ("Convert the active sentence to passive: 'The chef cooks
// the meal every day.'") that the training loop printed after each epoch, without the prompt:

// %% tags=["samples"]
const promptText = formatInput(val[0]).replace(/\n/g, " ");
showTable(
  samples.map(({ epoch, sample }) => {
    const rest = sample.slice(promptText.length);
    return { epoch, continuation: rest.trim() === "" ? `(only whitespace: ${rest.length} characters)` : rest.trim() };
  }),
  { caption: "Greedy continuation of val[0] after each epoch (50 tokens, newlines shown as spaces)" },
);

// %% [markdown]
// **In the run saved here** the tiny model has learned the template, not the task: after each epoch it writes
// the `### Response:` header and then a short, sentence-shaped answer ("The sentence.") followed by the
// `<|endoftext|>` marker — and, since this sample loop (the book's `generate_text_simple`) does not stop at the
// marker, more of the same. That is what 2 epochs from random weights buy; the answer itself is missing.
// Pretrained GPT-2 medium, in the book, answers "The meal is prepared every day by the chef." after the first
// epoch and "The meal is cooked every day by the chef." after the second.

// %% [markdown]
// ## Saving the model
//
// The fine-tuned model goes into `runs/notebook/model/` (the `runs/` folder is not committed), as a
// Hugging Face GPT-2 folder: `config.json` and `model.safetensors`, the same layout the pretrained weights
// came in, so notebook 06, the command line (`npm run generate -- --weights runs/notebook/model ...`) and
// Hugging Face's own `transformers` can all load it. Next to it, the run's settings and loss history.

// %% tags=["save"]
const RUN_DIR = path.resolve("..", "runs", "notebook");
await saveGPT2Directory(model, path.join(RUN_DIR, "model"));
const { position, stopped, ...curves } = history;
// `minutes: minutes`, not `{ minutes }`: tslab does not resolve a shorthand property naming another cell's variable
const record = { model: chosen.name, pretrained: chosen.pretrained, epochs: EPOCHS, trainLimit: TRAIN_LIMIT ?? null, quick: QUICK, lr: LR, minutes: minutes, ...curves };
writeFileAtomic(path.join(RUN_DIR, "run.json"), (fd) => writeAll(fd, JSON.stringify(record, null, 2) + "\n"));
console.log(`saved the model in ${path.relative(path.resolve(".."), path.join(RUN_DIR, "model"))}/: ${fs.readdirSync(path.join(RUN_DIR, "model")).sort().join(", ")}`);
model.dispose();

// %% [markdown]
// ## What comes next
//
// Notebook **06** loads this model back, lets it answer every instruction of the test set, puts its answers
// next to the expected ones, and saves them in the book's `instruction-data-with-response.json` — the file
// the book's section 7.8 hands to a larger model for scoring.
