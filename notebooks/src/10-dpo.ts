// %% [markdown]
// # 10 · Preference tuning with DPO
//
// *The bonus material of chapter 7 of Raschka's "Build a Large Language Model (from Scratch)": its repository's
// `ch07/04_preference-tuning-with-dpo`, "Direct Preference Optimization (DPO) for LLM Alignment (From Scratch)",
// in TypeScript.*
//
// Instruction fine-tuning (notebook 05) teaches a model to give *an* answer. Often more than one answer is right
// and one is preferred: more polite, shorter, safer. This notebook tunes the fine-tuned model of notebook 05 so
// that it prefers one style of answer over another, with direct preference optimization (DPO). It covers:
//
// 1. the idea, and the DPO loss written out;
// 2. the book's preference data: 1,100 instructions, each with a *chosen* (polite) and a *rejected* (impolite)
//    response;
// 3. the collate function in two drafts on the book's two-entry toy batch, checked against the library's;
// 4. the mean log-probability of a response, and the loss, computed by hand and by the library;
// 5. a DPO run (the book's `train_model_dpo_simple`) from notebook 05's model against a frozen copy of it, with the
//    loss and the reward margins as it goes, and plotted;
// 6. responses before and after, side by side, and the book's own figures;
// 7. LoRA DPO: the reference is the same weights with the adapter switched off, no second copy, and what that
//    saves for gpt2-medium, measured.
//
// **The outputs saved in this notebook come from the offline run: the tiny model notebook 05 trained from random
// weights, in the full setting (all 935 training entries, the book's 1 epoch).** With GPT-2 weights in the cache,
// notebook 05 fine-tunes gpt2-medium and this notebook tunes that model, as the book does.
//
// ## The idea
//
// DPO (Rafailov et al., 2023, "Direct Preference Optimization: Your Language Model is Secretly a Reward Model")
// works with two models: the **policy** π, the model being tuned, and the **reference** π_ref, a frozen copy of the
// model as it was before. For a prompt x with a chosen response y_w and a rejected one y_l the loss is
//
//     loss = −log σ( β · [ (log π(y_w|x) − log π(y_l|x)) − (log π_ref(y_w|x) − log π_ref(y_l|x)) ] )
//
// The bracket asks: how much more does the policy prefer the chosen response over the rejected one than the
// reference did? σ is the logistic function, so the loss falls as that gap grows. At the start the policy *is*
// the reference, the bracket is 0 and the loss is −log σ(0) = ln 2 = 0.6931. Nothing ever rewards the policy for
// moving away from the reference for its own sake: only the *relative* preference counts, which keeps the tuned
// model close to the instruction-tuned one. β (the book: 0.1; 0.5 keeps it closer still) scales the bracket.
//
// The two halves of the bracket are what the book tracks as **rewards**: the chosen reward log π(y_w|x) − log
// π_ref(y_w|x), the rejected reward likewise, and their difference, the **reward margin**. Rising margins mean
// the policy is learning the preference. As in the book, log π(y|x) is the *mean* log-probability of the
// response's tokens (not the sum the paper writes), so long and short responses weigh the same.

// %% tags=["settings"]
import { BOOK_DPO_BETA, BOOK_DPO_EPOCHS, BOOK_DPO_LR, BOOK_DPO_WEIGHT_DECAY } from "@course/lib";
const QUICK = process.env.COURSE_QUICK === "1";
const TRAIN_LIMIT: number | undefined = QUICK ? 120 : undefined; // preference entries to train on (undefined: all 935)
const BETA = BOOK_DPO_BETA; // the book: 0.1
const EPOCHS = BOOK_DPO_EPOCHS; // the book: 1 (DPO is prone to collapse with more)
console.log(`β ${BETA}; ${EPOCHS} epoch; training entries: ${TRAIN_LIMIT ?? "all"}${QUICK ? " (quick setting, COURSE_QUICK=1)" : ""}; the book's lr ${BOOK_DPO_LR}`);

// %%
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  initEngine, loadPreferenceData, splitData, formatInput, PreferenceDataset, PreferenceLoader, PreferenceExample, PreferenceEntry,
  collatePreference, computeLogProbs, dpoLoss, dpoLossBatch, evaluateDPO, trainModelDPOSimple, dpoTrainStep, referenceFor, describeReference,
  rewardMargins, loadGPT2Directory, generateResponse, decodeTokens, AdamW, runProgress, lossPlotFigure, showPlot,
  showTable, countParams, countLoRAParams, GPT2_MEDIUM, END_OF_TEXT, BOOK_BATCH_SIZE, BOOK_SEED,
  BOOK_EVAL_FREQ, BOOK_EVAL_ITER, BOOK_LORA_RANK, BOOK_LORA_ALPHA,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## The preference data
//
// The book made it from the chapter's instruction data: for each of the 1,100 entries a local Llama 3 (through
// Ollama) rewrote the answer once politely and once impolitely, and the polite one became `chosen`. The file ships
// in `data/` with its source, licence and SHA-256 (`data/NOTICE`); `loadPreferenceData` checks every entry on
// load (a missing or empty field names the entry and the field). The book's two example entries:

// %% tags=["data"]
const data = await loadPreferenceData();
console.log(`Number of entries: ${data.length}`);
for (const i of [50, 999]) console.log(JSON.stringify(data[i], null, 1));
const { train: allTrain, val, test } = splitData(data);
const train = TRAIN_LIMIT === undefined ? allTrain : allTrain.slice(0, TRAIN_LIMIT);
console.log(`Training set length: ${allTrain.length}\nValidation set length: ${val.length}\nTest set length: ${test.length}`);

// %% [markdown]
// The same 85 / 5 / 10 split as the chapter. `output` is the answer notebook 05 trained on; DPO uses only
// `chosen` and `rejected`.
//
// ## The dataset: three token lists per entry
//
// The book's `PreferenceDataset` tokenizes each entry once into the prompt alone (the Alpaca `format_input` of
// notebook 01), and the prompt followed by `\n\n### Response:\n` and the chosen, or the rejected, response. The
// prompt's length tells the collate function where the response starts.

// %% tags=["dataset"]
const toyEntries = data.slice(0, 2); // the book's example_data = data[:2]
const toy = new PreferenceDataset(toyEntries);
for (const [i, e] of toy.encoded.entries()) {
  console.log(`entry ${i}: prompt ${e.prompt.length} tokens, chosen ${e.chosen.length}, rejected ${e.rejected.length}`);
}
console.log(decodeTokens(toy.encoded[0].chosen));

// %% [markdown]
// ## The collate function, in two drafts
//
// DPO runs the model over the chosen and the rejected sequences of a batch, so both are padded to one common
// length: the longest of either, plus one, as the book does (the extra position keeps one `<|endoftext|>` after
// the longest sequence). Instead of targets with -100 (notebook 02), each sequence gets a **mask**, true where a
// token counts. Draft 1 masks only the padding:

// %% tags=["collate-draft1"]
type ToyBatch = { chosen: number[][]; rejected: number[][]; chosenMask: boolean[][]; rejectedMask: boolean[][] };
function collateDraft1(batch: PreferenceExample[], padId = END_OF_TEXT): ToyBatch {
  const width = 1 + Math.max(...batch.flatMap((e) => [e.chosen.length, e.rejected.length]));
  const out: ToyBatch = { chosen: [], rejected: [], chosenMask: [], rejectedMask: [] };
  for (const e of batch) {
    for (const key of ["chosen", "rejected"] as const) {
      const seq = e[key];
      out[key].push([...seq, ...new Array(width - seq.length).fill(padId)]); // pad with <|endoftext|>
      out[key === "chosen" ? "chosenMask" : "rejectedMask"].push(Array.from({ length: width }, (_, t) => t < seq.length)); // false on padding
    }
  }
  return out;
}
/** A mask as runs: "F×50 T×24 F×7" (50 false, 24 true, 7 false). */
const runs = (mask: boolean[]) => mask.reduce((acc: [boolean, number][], m) => (acc.length && acc[acc.length - 1][0] === m ? acc[acc.length - 1][1]++ : acc.push([m, 1]), acc), []).map(([m, n]) => `${m ? "T" : "F"}×${n}`).join(" ");
const draft1 = collateDraft1(toy.encoded);
console.log(`chosen: ${draft1.chosen.length} × ${draft1.chosen[0].length}`);
console.log(`first row: ${JSON.stringify(draft1.chosen[0])}`);
console.log(`chosen masks: ${draft1.chosenMask.map(runs).join(" | ")}`);

// %% [markdown]
// Scoring the prompt would reward the policy for predicting the instruction, which both responses share. Draft 2
// also masks the prompt, and the two newline tokens before `### Response:` that `format_input` does not include
// (the book's `mask[:prompt.shape[0]+2] = False`), and cuts everything to the model's context length:

// %% tags=["collate-draft2"]
function collateDraft2(batch: PreferenceExample[], allowedMaxLength?: number, padId = END_OF_TEXT): ToyBatch {
  const out = collateDraft1(batch, padId);
  batch.forEach((e, i) => {
    for (const mask of [out.chosenMask[i], out.rejectedMask[i]]) {
      for (let t = 0; t < Math.min(e.prompt.length + 2, mask.length); t++) mask[t] = false; // the prompt and "\n\n"
    }
  });
  const cut = <T,>(rows: T[][]) => (allowedMaxLength === undefined ? rows : rows.map((r) => r.slice(0, allowedMaxLength)));
  return { chosen: cut(out.chosen), rejected: cut(out.rejected), chosenMask: cut(out.chosenMask), rejectedMask: cut(out.rejectedMask) };
}
const draft2 = collateDraft2(toy.encoded, 1024);
console.log(`chosen masks: ${draft2.chosenMask.map(runs).join(" | ")}`);
const scoredText = (ids: number[], mask: boolean[]) => decodeTokens(ids.filter((_, t) => mask[t]));
console.log(`entry 0, chosen, masked: ${JSON.stringify(scoredText(draft2.chosen[0], draft2.chosenMask[0]))}`);
console.log(`entry 0, rejected, masked: ${JSON.stringify(scoredText(draft2.rejected[0], draft2.rejectedMask[0]))}`);

// %% [markdown]
// What is left in each row is the response header and the response, as in the book: that is what DPO scores. The library's `collatePreference`
// (`lib/data/preference-collate.ts`) is draft 2, with the prompts kept too and a check that no row is cut to
// nothing (its mean would be 0/0):

// %% tags=["collate-library"]
const library = collatePreference(toy.encoded, { allowedMaxLength: 1024 });
const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
console.log(`draft 2 agrees with collatePreference: ${(["chosen", "rejected", "chosenMask", "rejectedMask"] as const).every((k) => same(draft2[k], library[k]))}`);
console.log(`without the prompt mask it is draft 1: ${same(collatePreference(toy.encoded, { maskPromptTokens: false }).chosenMask, draft1.chosenMask)}`);

// %% [markdown]
// ## Log-probabilities
//
// The book's `compute_logprobs` turns logits into log π(y|x): a log-softmax over the vocabulary at each
// position, the entry of the token that actually comes next (`torch.gather`), and the mean over the masked
// positions. It is the cross-entropy of notebook 02 without the minus sign, as the book shows on two rows:

// %% tags=["gather"]
const toyLogits = tf.tensor2d([[2.0, 1.0, 0.1], [0.5, 2.5, 0.3]]); // (2, 3)
const toyTargets = [0, 2];
const logSoftmaxRows = tf.logSoftmax(toyLogits, -1).arraySync() as number[][];
const manualLoss = -toyTargets.reduce((s, t, i) => s + logSoftmaxRows[i][t], 0) / toyTargets.length; // the gather, by hand
const crossEntropy = tf.losses.softmaxCrossEntropy(tf.oneHot(tf.tensor1d(toyTargets, "int32"), 3), toyLogits).dataSync()[0];
console.log(`${manualLoss.toFixed(4)} ${crossEntropy.toFixed(4)}`);

// %% [markdown]
// Over a batch, by hand: the model's row at position t predicts the token at t + 1, so the labels and the mask
// lose their first position and the logits their last. Here with plain loops, against the library's
// `computeLogProbs` (tensors) on random logits:

// %% tags=["logprobs"]
function meanLogProbsByHand(logits: number[][][], labels: number[][], mask: boolean[][]): number[] {
  return logits.map((rows, b) => {
    let sum = 0;
    let count = 0;
    for (let t = 0; t + 1 < rows.length; t++) {
      if (!mask[b][t + 1]) continue; // only the response's tokens
      const lse = Math.log(rows[t].reduce((s, x) => s + Math.exp(x), 0)); // log Σ exp: the softmax's denominator
      sum += rows[t][labels[b][t + 1]] - lse; // log-probability of the actual next token
      count++;
    }
    return sum / count;
  });
}
const randomLogits = tf.randomNormal([2, 6, 11], 0, 2, "float32", BOOK_SEED) as tf.Tensor3D; // (B, T, V)
const labels = [[3, 1, 4, 1, 5, 9], [2, 6, 5, 3, 5, 8]];
const masks = [[false, false, true, true, true, false], [false, false, false, true, true, true]];
const byHand = meanLogProbsByHand(randomLogits.arraySync(), labels, masks);
const fromLibrary = computeLogProbs(randomLogits, tf.tensor2d(labels, undefined, "int32"), tf.tensor2d(masks.map((r) => r.map(Number)))).arraySync();
console.log(`by hand: ${byHand.map((x) => x.toFixed(5)).join(", ")}; library: ${fromLibrary.map((x) => x.toFixed(5)).join(", ")}`);
console.log(`the cell agrees with computeLogProbs: ${byHand.every((x, i) => Math.abs(x - fromLibrary[i]) < 1e-5)}`);

// %% [markdown]
// ## The loss
//
// `dpoLoss` is the book's `compute_dpo_loss`: from the four vectors of mean log-probabilities (policy and
// reference, chosen and rejected), the loss and the mean chosen and rejected rewards. Two cases by hand: a policy
// that equals the reference, and one that has raised the chosen response's log-probability by 0.5 and lowered the
// rejected one's by 0.5 (a bracket of 1, so −log σ(0.1) = 0.6444):

// %% tags=["loss"]
const ref = { chosen: tf.tensor1d([-1.2, -0.8]), rejected: tf.tensor1d([-1.0, -1.5]) };
const equal = dpoLoss(ref.chosen, ref.rejected, ref.chosen, ref.rejected, BETA);
console.log(`policy = reference: loss ${equal.loss.dataSync()[0].toFixed(4)} (ln 2 = ${Math.LN2.toFixed(4)}), rewards ${equal.chosenRewards.dataSync()[0]}, ${equal.rejectedRewards.dataSync()[0]}`);
const moved = dpoLoss(tf.add(ref.chosen, 0.5), tf.sub(ref.rejected, 0.5), ref.chosen, ref.rejected, BETA);
const [c, r] = [moved.chosenRewards.dataSync()[0], moved.rejectedRewards.dataSync()[0]];
console.log(`chosen up 0.5, rejected down 0.5: loss ${moved.loss.dataSync()[0].toFixed(4)} (−log σ(0.1) = ${(-Math.log(1 / (1 + Math.exp(-0.1)))).toFixed(4)}), rewards ${c.toFixed(2)}, ${r.toFixed(2)}, margin ${(c - r).toFixed(2)}`);
tf.dispose([toyLogits, randomLogits, ref.chosen, ref.rejected, equal.loss, equal.chosenRewards, equal.rejectedRewards, moved.loss, moved.chosenRewards, moved.rejectedRewards]);

// %% [markdown]
// ## The loaders
//
// As in chapter 7: batches of 8, the training loader shuffled (seeded) with its last incomplete batch dropped,
// validation and test in order.

// %% tags=["loaders"]
const collateOptions = { allowedMaxLength: 1024 };
const trainLoader = new PreferenceLoader(new PreferenceDataset(train), { batchSize: BOOK_BATCH_SIZE, shuffle: true, dropLast: true, seed: BOOK_SEED, collateOptions: collateOptions });
const valLoader = new PreferenceLoader(new PreferenceDataset(val), { batchSize: BOOK_BATCH_SIZE, collateOptions: collateOptions });
const testLoader = new PreferenceLoader(new PreferenceDataset(test), { batchSize: BOOK_BATCH_SIZE, collateOptions: collateOptions });
console.log(`batches per epoch: ${trainLoader.numBatches} train, ${valLoader.numBatches} validation, ${testLoader.numBatches} test`);

// %% [markdown]
// ## The policy and the reference
//
// Both start as notebook 05's fine-tuned model, loaded twice from `runs/notebook/model/`: the policy, which
// AdamW will change, and the reference, which `referenceFor` freezes (no gradients, no optimizer state; it must
// be a separate copy of the same architecture). The book does the same with `gpt2-medium355M-sft.pth`.

// %% tags=["model"]
const RUN_DIR = path.resolve("..", "runs", "notebook");
if (!fs.existsSync(path.join(RUN_DIR, "model", "model.safetensors"))) throw new Error(`no fine-tuned model in ${RUN_DIR}/model: run notebook 05 first`);
const run = JSON.parse(fs.readFileSync(path.join(RUN_DIR, "run.json"), "utf8"));
const policy = await loadGPT2Directory(path.join(RUN_DIR, "model"));
const referenceModel = await loadGPT2Directory(path.join(RUN_DIR, "model")); // the second copy
const reference = referenceFor(policy, referenceModel); // frozen
console.log(
  `policy: notebook 05's ${run.model} (${run.pretrained ? "from pretrained weights" : "from RANDOM weights, NOT pretrained GPT-2"}), ` +
    `${run.epochs} epochs on ${run.trainLimit ?? "all"} training entries${run.quick ? " (quick setting)" : ""}`,
);
console.log(`reference: ${describeReference(reference)}`);
console.log(`trainable parameters: policy ${policy.numTrainableParams().toLocaleString("en-US")}, reference 0`);

// %% [markdown]
// Before training, the book prints the losses and margins of 5 training and 5 validation batches: with the
// policy equal to the reference, every loss is ln 2 and every reward 0. Then it lets the model answer the first
// three validation entries, to compare with the answers after DPO.

// %% tags=["initial"]
const initial = await evaluateDPO(policy, reference, trainLoader, valLoader, BETA, BOOK_EVAL_ITER);
console.log(`Training loss: ${initial.train.loss}`);
console.log(`Validation loss: ${initial.val.loss}`);
console.log(`Train reward margin: ${initial.train.chosenReward - initial.train.rejectedReward}`);
console.log(`Val reward margin: ${initial.val.chosenReward - initial.val.rejectedReward}`);
const compared: PreferenceEntry[] = [...val.slice(0, 3), ...test.slice(0, 3)]; // the book's val_data[:3] and test_data[:3]
const before: string[] = [];
for (const entry of compared) before.push(await generateResponse(policy, entry));
console.log(`${before.length} responses before DPO, e.g. ${JSON.stringify(before[1])}`);

// %% [markdown]
// ## Training
//
// `trainModelDPOSimple` is the book's `train_model_dpo_simple`: chapter 5's training loop with the DPO loss of
// each batch in place of the cross-entropy. Each step runs the frozen reference on the batch's chosen and rejected
// sequences (outside the gradient tape), then the policy with gradients, and an AdamW step on the policy alone;
// every 5 steps it evaluates loss and rewards on 5 training and 5 validation batches and prints the book's line.
// The library computes the log-probabilities from the last hidden states of the scored positions only, not from
// the logits of every position (the output head is most of the work); a test checks that it gives the book's
// `compute_logprobs` values.
//
// The learning rate: the book's 5e-6 (with weight decay 0.01) tunes pretrained gpt2-medium, ten times below its
// instruction fine-tuning rate. The offline tiny model was fine-tuned from random weights at `RANDOM_INIT_LR` =
// 3e-3 (notebook 05) and gets a larger DPO rate too, found by trying on this machine (one epoch each, the
// book's β and schedule): at 5e-6 the validation loss went from 0.693 to 0.692 and the margin to 0.02; at 3e-4
// (a tenth of its fine-tuning rate) the loss and margins came close to the book's (validation loss 0.629, margin
// 1.39 after 116 steps) but the answers collapsed into repetitions ("task task task …"), the collapse the book
// warns about when it keeps DPO to one epoch and a small rate; 1e-4 moves the margins without it.

// %% tags=["train"]
const RANDOM_DPO_LR = 1e-4; // the offline tiny model's DPO rate (see above)
const LR = run.pretrained ? BOOK_DPO_LR : RANDOM_DPO_LR;
const optimizer = new AdamW(policy.trainableParams(), { lr: LR, weightDecay: BOOK_DPO_WEIGHT_DECAY });
console.log(`AdamW lr ${LR}, weight decay ${BOOK_DPO_WEIGHT_DECAY}; ${trainLoader.numBatches} steps`);
const progress = runProgress("DPO");
const started = Date.now();
const history = await trainModelDPOSimple(policy, reference, trainLoader, valLoader, optimizer, {
  numEpochs: EPOCHS,
  beta: BETA,
  evalFreq: BOOK_EVAL_FREQ,
  evalIter: BOOK_EVAL_ITER,
  startContext: formatInput(val[2]), // the book: format_input(val_data[2])
  log: progress.log,
  onStep: progress.onStep,
});
progress.done();
console.log(`Training completed in ${((Date.now() - started) / 60000).toFixed(2)} minutes.`);
optimizer.dispose();

// %% [markdown]
// **The book's run** (gpt2-medium after chapter 7's fine-tuning, an A100, 116 steps) starts at
// `Ep 1 (Step 000000): Train loss 0.692, Val loss 0.693, Train reward margins 0.019, Val reward margins 0.009` and
// ends at `Ep 1 (Step 000115): Train loss 0.621, Val loss 0.620, Train reward margins 1.605, Val reward margins
// 1.682`, "Training completed in 1.69 minutes." (about 2 minutes on an A100, 4 on an L4, 30 on an M3 MacBook Air,
// the book says). The first line is not exactly ln 2 because it comes after the first step.
//
// ## The loss and the reward margins
//
// The book plots both with chapter 5's loss plot: the loss falling from ln 2, and the margins rising from 0.

// %% tags=["loss-plot"]
await showPlot(lossPlotFigure(history, { numEpochs: EPOCHS, title: `DPO loss (${run.model})` }));

// %% tags=["margins-plot"]
const margins = rewardMargins(history);
await showPlot(
  lossPlotFigure({ ...history, trainLosses: margins.train, valLosses: margins.val }, { numEpochs: EPOCHS, label: "reward margins", title: `DPO reward margins (${run.model})`, legend: "lower right" }),
);
const at = (xs: number[], i: number) => xs[(i + xs.length) % xs.length].toFixed(3);
console.log(`validation loss ${at(history.valLosses, 0)} -> ${at(history.valLosses, -1)}; validation reward margin ${at(margins.val, 0)} -> ${at(margins.val, -1)}`);

// %% [markdown]
// ## Responses before and after
//
// The book's last check is the one that matters: the answers themselves, for the first three validation and the
// first three test entries, from the reference (the model before DPO) and from the policy.

// %% tags=["responses"]
const after: string[] = [];
for (const entry of compared) after.push(await generateResponse(policy, entry));
showTable(
  compared.map((entry, i) => ({
    set: i < 3 ? "validation" : "test",
    instruction: entry.instruction + (entry.input ? ` (${entry.input})` : ""),
    "correct response": entry.output,
    "before DPO (reference)": before[i],
    "after DPO (policy)": after[i],
  })),
  { caption: `Responses before and after DPO (${run.model})` },
);
console.log(`${after.filter((a, i) => a !== before[i]).length} of ${after.length} responses changed`);

// %% [markdown]
// **The book's answers** (gpt2-medium) change a little, as DPO should: the style, not the content. "`"Dance" can
// be classified as a verb.`" became "`The input string "Dance" could be classified as a verb.`", which the book
// calls slightly more polite ("could" is less assertive than "can"); "The meal is cooked every day by the chef."
// became "The meal is prepared by the chef."; three of its six answers stayed the same. **In the run saved here**
// (the tiny model from random weights, lr 1e-4, 116 steps in 3.5 minutes on two shared CPU cores with the
// WebAssembly engine) the validation loss went from 0.693 to 0.672 and the validation reward margin from 0 to
// 0.43, where the book's gpt2-medium reached 0.620 and 1.68; five of the six answers changed, none into a good
// one: the tiny model's answers were never good, and one epoch of DPO does not teach it style. The loss and the
// margins are the part of this run that carries over: the policy learned to prefer the chosen responses of the
// validation set, which it never trained on.
//
// ## LoRA DPO: the reference for free
//
// DPO as the book runs it keeps two full models: the policy with its gradients and AdamW's two moments (five
// float32 copies of the weights in all) and the frozen reference (one more). With LoRA (notebook 09) the policy's
// weights stay frozen and only the small A and B matrices train, so the model before tuning is still there, inside
// the policy: switch the adapter off and it computes exactly the reference's numbers. `referenceFor(policy)` on a
// LoRA model returns `"adapter-off"`, and the DPO step runs the reference's forward pass on the policy itself with
// `withAdapterOff`: no second copy of the model at all.
//
// A check on the tiny model: a LoRA policy on notebook 05's weights, trained for a few DPO steps so that its
// adapter is no longer zero; with the adapter off it computes what the untouched reference computes.

// %% tags=["lora"]
const loraPolicy = await loadGPT2Directory(path.join(RUN_DIR, "model"));
loraPolicy.applyLoRA({ rank: BOOK_LORA_RANK, alpha: BOOK_LORA_ALPHA, seed: BOOK_SEED });
const loraReference = referenceFor(loraPolicy); // no model given: the adapter switched off
console.log(`LoRA rank ${BOOK_LORA_RANK}: ${loraPolicy.numTrainableParams().toLocaleString("en-US")} trainable parameters; reference: ${describeReference(loraReference)}`);
const loraOptimizer = new AdamW(loraPolicy.trainableParams(), { lr: LR, weightDecay: BOOK_DPO_WEIGHT_DECAY });
const LORA_STEPS = 10; // a few DPO steps (the trainer's own step, dpoTrainStep): enough for a non-zero adapter
for (const [i, batch] of [...trainLoader.batches(0)].slice(0, LORA_STEPS).entries()) await dpoTrainStep(loraPolicy, loraReference, loraOptimizer, batch, BETA, i + 1);
loraOptimizer.dispose();
const firstVal = valLoader.batches(0).next().value!;
const readParts = (p: { loss: tf.Scalar; chosenRewards: tf.Scalar; rejectedRewards: tf.Scalar }) => {
  const out = [p.loss, p.chosenRewards, p.rejectedRewards].map((x) => x.dataSync()[0]);
  tf.dispose([p.loss, p.chosenRewards, p.rejectedRewards]);
  return out;
};
const againstOff = readParts(dpoLossBatch(loraPolicy, loraReference, firstVal, BETA)); // reference = the adapter switched off
const againstCopy = readParts(dpoLossBatch(loraPolicy, reference, firstVal, BETA)); // reference = the separate frozen copy
console.log(`after ${LORA_STEPS} LoRA DPO steps, first validation batch: loss ${againstOff[0].toFixed(6)} against the adapter switched off, ${againstCopy[0].toFixed(6)} against the frozen copy`);
// the same loss and rewards both ways, and not ln 2: the adapter has moved the policy away from the reference
console.log(`the adapter switched off is the reference: ${againstOff.every((x, i) => Math.abs(x - againstCopy[i]) < 1e-5) && Math.abs(againstOff[0] - Math.LN2) > 1e-6}`);
loraPolicy.dispose();

// %% [markdown]
// ## What LoRA DPO saves for gpt2-medium
//
// Counted first, from the config alone (float32, 4 bytes a value; gpt2-medium with its own output head, as the
// library loads it): what each way keeps before a single activation.

// %% tags=["memory-count"]
const mediumParams = countParams(GPT2_MEDIUM);
const mediumLoRA = countLoRAParams(GPT2_MEDIUM, BOOK_LORA_RANK);
const GiB = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const fullBytes = { policy: 5 * 4 * mediumParams, reference: 4 * mediumParams }; // weights, gradients, AdamW m and v; and a frozen copy
const loraBytes = { policy: 4 * mediumParams + 5 * 4 * mediumLoRA, reference: 0 }; // frozen weights once, the adapter five times; the adapter off
showTable(
  [
    { run: "full DPO (the book's)", "trainable values": mediumParams.toLocaleString("en-US"), "policy's training state": GiB(fullBytes.policy), reference: GiB(fullBytes.reference), "before activations": GiB(fullBytes.policy + fullBytes.reference) },
    { run: `LoRA DPO (rank ${BOOK_LORA_RANK})`, "trainable values": mediumLoRA.toLocaleString("en-US"), "policy's training state": GiB(loraBytes.policy), reference: "0 (the adapter switched off)", "before activations": GiB(loraBytes.policy) },
  ],
  { caption: "gpt2-medium, DPO, before activations (counted)" },
);
console.log(`gpt2-medium before activations: full DPO ${GiB(fullBytes.policy + fullBytes.reference)}, LoRA DPO ${GiB(loraBytes.policy)}`);

// %% [markdown]
// **Measured** on the machine that executed this notebook (24 GiB of memory, two CPU cores, no GPU) with
// `npm run bench -- --dpo --config gpt2-medium [--lora-rank 16] [--recompute] --backend …` (random weights of
// gpt2-medium's shapes, the first 3 batches of the book's shuffled training loader, 8 × 70–75 tokens, each one
// DPO step; the peak is the process's resident memory) and on the longest training batch (8 × 115) by itself:
//
// | gpt2-medium DPO, batch 8 | engine | peak memory | time a step | the longest batch (8 × 115) |
// |---|---|---|---|---|
// | full (a second, frozen copy) | WebAssembly | refused before the first step: ~9.1 GiB before activations, past the 4 GiB heap | – | – |
// | full | native (tfjs-node, CPU) | killed by the kernel at 22.9 GiB in the first step | – | – |
// | full, activations recomputed | native | 16.9 GiB | 34.5 s | killed at 19.8 GiB (other jobs held ~3 GiB) |
// | LoRA rank 16, the adapter off | native | 22.6 GiB | 9.4 s | – |
// | LoRA rank 16, recomputed | native | 5.0 GiB | 25.3 s | 5.3 GiB, fits |
// | LoRA rank 16, recomputed (the default on wasm) | WebAssembly | 3.2 GiB heap (3.5 GiB resident) | 25.3 s | did not finish in 5½ minutes: the heap's end; at batch 4 it fits (2.9 GiB heap) |
// | the book's code, full (two models), PyTorch 2.13 | CPU | 10.9 GiB | 39.7 s | – |
// | the book's code with appendix E's LoRA (two models) | CPU | 8.3 GiB | 70.8 s | – |
//
// So full DPO of gpt2-medium does not fit this 24 GiB machine with this library: the policy's training state and
// the reference are 9.1 GiB before any activation, and TensorFlow.js keeps more around a step than PyTorch does.
// LoRA DPO with the adapter switched off as the reference does, on both engines: on the native one in about 5 GiB
// (with recomputation; without it the activations alone take most of the 24 GiB), on WebAssembly inside its 4 GiB
// heap, at batch 4 for the longest batches (`npm run dpo -- --lora-rank 16 --batch-size 4`). With a GPU
// (`@tensorflow/tfjs-node-gpu`) or more memory, full DPO runs as the book's does.
//
// ## What comes next
//
// On the command line the whole notebook is one command, on any GPT-2 folder (notebook 05's, `finetune`'s
// `model/`, or a Hugging Face download):
//
//     npm run dpo -- --weights runs/notebook/model --out runs/dpo
//     npm run dpo -- --weights runs/notebook/model --lora-rank 16 --out runs/dpo-lora
//
// It saves the tuned model as a Hugging Face GPT-2 folder (`transformers` loads it), the history, both plots and
// the responses before and after; `--loss-only` prints the DPO loss and rewards of a model against a reference
// over a preference file without training. `npm run bench -- --dpo` times a DPO step, full or LoRA, against the
// book's PyTorch code on the same batches.
//
// To talk to the models you have tuned, `npm run chat -- --weights runs/dpo/model` serves a chat page at
// http://127.0.0.1:8000/ that shows each answer token by token as it is generated; the same server speaks the
// OpenAI chat-completions API under `/v1`, so any OpenAI client (or `npm run judge -- --api openai`) can use it,
// and with temperature 0 its answers are exactly those of `npm run generate`. The README's "Make your own data"
// covers the rest of the book's chapter-7 folder: near-duplicates (notebook 01 counts them) and making preference
// and instruction data with a larger model through Ollama.

// %%
policy.dispose();
referenceModel.dispose();
