/**
 * `npm run dpo -- --weights DIR [--reference DIR] [--data FILE] [--epochs N] [--beta B] [--lora-rank R] [--out DIR]`:
 * the chapter's DPO bonus (ch07/04) in one command. The policy starts from --weights (an instruction-tuned
 * model, e.g. `finetune`'s model/ folder) and is tuned on the preference data with the book's
 * `train_model_dpo_simple` (β 0.1, AdamW lr 5e-6, weight decay 0.01, 1 epoch, batch 8, an evaluation every
 * 5 steps on 5 batches), against a frozen reference: --reference, by default a second copy of --weights.
 * With --lora-rank R the policy trains a LoRA adapter and the reference is the same weights with the
 * adapter switched off: no second copy of the model. The run folder (--out) receives
 *
 *   dpo-history.json                   losses, rewards, margins, tokens seen and steps of every evaluation
 *   dpo-loss.html/.png                 the book's loss plot
 *   dpo-reward-margins.html/.png       the reward margins, train and validation
 *   dpo-responses.json                 the first three validation and test entries: the response before and after
 *   model/                             the tuned model, a Hugging Face GPT-2 folder (LoRA merged into it)
 *   lora-adapter/                      with --lora-rank: the adapter alone
 *
 * `--loss-only` trains nothing: it prints the DPO loss, the mean chosen and rejected rewards and the margin of
 * the policy against the reference over every entry of --data, in file order, batches of --batch-size
 * (the book's compute_dpo_loss_loader, no shuffling, the last batch short), as four lines on stdout.
 */
import type { EngineChoice } from "../engine";
import * as path from "path";
import { Command, Option } from "commander";
import {
  BOOK_BATCH_SIZE, BOOK_DPO_BETA, BOOK_DPO_EPOCHS, BOOK_DPO_LR, BOOK_DPO_WEIGHT_DECAY, BOOK_EVAL_FREQ, BOOK_EVAL_ITER,
  BOOK_LORA_ALPHA, BOOK_MAX_NEW_TOKENS, BOOK_SEED,
} from "../core/book";
import { ConfigError, CourseError } from "../core/errors";
import { DEFAULT_PREFERENCE_FILE, loadPreferenceData } from "../data/preference-data";
import { PreferenceDataset } from "../data/preference-dataset";
import { PreferenceLoader } from "../data/preference-loader";
import { splitData } from "../data/split";
import { formatInput } from "../data/prompt";
import type { GPTModel } from "../model/gpt";
import { formatParamSummary } from "../model/gpt";
import { formatLoRACounts } from "../model/lora";
import { loadGPT2Directory } from "../weights/gpt2-directory";
import { AdamW } from "../train/adamw";
import { dpoLossLoader } from "../train/dpo-batch";
import { describeReference, DPOReference, referenceFor } from "../train/dpo-reference";
import { trainModelDPOSimple } from "../train/dpo-train";
import { runProgress } from "../display/run-progress";
import { parseBackend, parseIntOption, parseNumberOption, runCli, startEngine } from "./common";
import { claimOut, checkOut } from "./run-folder";
import { compareResponses, saveDPORun } from "./dpo-outputs";

export interface DPOOptions {
  weights: string;
  reference?: string;
  data: string;
  epochs: number;
  beta: number;
  lr: number;
  weightDecay: number;
  batchSize: number;
  evalFreq: number;
  evalIter: number;
  seed: number;
  limit?: number;
  loraRank?: number;
  loraAlpha: number;
  recompute?: boolean;
  out?: string;
  force: boolean;
  lossOnly: boolean;
  backend?: EngineChoice;
  responseTokens: number;
}

function program(): Command {
  return new Command("dpo")
    .description("Preference-tune a model with DPO (the book's ch07/04 bonus), or with --loss-only print its DPO loss on the data")
    .requiredOption("--weights <dir>", "the model to tune (the policy): a Hugging Face GPT-2 folder, e.g. finetune's model/")
    .option("--reference <dir>", "the frozen reference model (default: a second copy of --weights; with --lora-rank: --weights with the adapter off)")
    .option("--data <file>", "preference data (JSON array of {instruction, input, output, chosen, rejected})", DEFAULT_PREFERENCE_FILE)
    .option("--epochs <n>", "training epochs", parseIntOption("epochs", 1), BOOK_DPO_EPOCHS)
    .option("--beta <b>", "β of the DPO loss (the book: 0.1; up to 0.5 keeps the policy closer to the reference)", parseNumberOption("beta", 0), BOOK_DPO_BETA)
    .option("--lr <x>", "AdamW learning rate", parseNumberOption("lr", 0), BOOK_DPO_LR)
    .option("--weight-decay <x>", "AdamW decoupled weight decay", parseNumberOption("weight-decay", 0), BOOK_DPO_WEIGHT_DECAY)
    .option("--batch-size <n>", "entries per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--eval-freq <n>", "evaluate every n steps", parseIntOption("eval-freq", 1), BOOK_EVAL_FREQ)
    .option("--eval-iter <n>", "batches per evaluation", parseIntOption("eval-iter", 1), BOOK_EVAL_ITER)
    .option("--seed <n>", "seed for shuffling, dropout and LoRA's A", parseIntOption("seed", 0), BOOK_SEED)
    .option("--limit <n>", "use only the first n entries of the data file (quick runs)", parseIntOption("limit", 1))
    .option("--lora-rank <r>", "train a LoRA adapter of this rank; the reference is then the weights with the adapter off", parseIntOption("lora-rank", 1))
    .option("--lora-alpha <a>", "LoRA's alpha: the update is scaled by alpha / rank", parseNumberOption("lora-alpha", 0), BOOK_LORA_ALPHA)
    .option("--recompute", "recompute each block's activations in the backward pass (default: on for LoRA on wasm)")
    .option("--no-recompute", "keep every activation for the backward pass")
    .option("--out <dir>", "run folder (default runs/<timestamp>)")
    .option("--force", "write into --out even if it exists and is not empty", false)
    .option("--loss-only", "train nothing: print the DPO loss, the chosen and rejected rewards and the margin over every entry of --data", false)
    .option("--backend <name>", "tensorflow | webgpu | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    // tests only: shorter before/after responses (the book: 256 new tokens)
    .addOption(new Option("--response-tokens <n>").argParser(parseIntOption("response-tokens", 1)).default(BOOK_MAX_NEW_TOKENS).hideHelp());
}

/** The reference model: --reference (or a second copy of --weights), or the LoRA policy with its adapter off. */
async function loadReference(policy: GPTModel, opts: DPOOptions): Promise<DPOReference> {
  if (opts.reference === undefined && policy.lora !== null) return referenceFor(policy);
  const dir = opts.reference ?? opts.weights;
  const model = await loadGPT2Directory(dir);
  try {
    return referenceFor(policy, model);
  } catch (err) {
    model.dispose();
    throw err instanceof CourseError ? new ConfigError(`--reference ${dir}: ${err.message} (--weights ${opts.weights})`) : err;
  }
}

/** --loss-only: the four lines of the book's compute_dpo_loss_loader over the whole file. */
async function lossOnly(opts: DPOOptions): Promise<void> {
  if (opts.loraRank !== undefined) throw new ConfigError("--loss-only evaluates --weights against --reference; --lora-rank trains an adapter: leave it out");
  const entries = (await loadPreferenceData(opts.data)).slice(0, opts.limit);
  const policy = await loadGPT2Directory(opts.weights);
  const reference = await loadReference(policy, opts);
  const loader = new PreferenceLoader(new PreferenceDataset(entries), { batchSize: opts.batchSize, collateOptions: { allowedMaxLength: policy.cfg.contextLength } });
  const r = await dpoLossLoader(loader.batches(0), policy, reference, opts.beta);
  console.log(`DPO loss: ${r.loss}`);
  console.log(`chosen reward: ${r.chosenReward}`);
  console.log(`rejected reward: ${r.rejectedReward}`);
  console.log(`reward margin: ${r.chosenReward - r.rejectedReward}`);
}

async function main(): Promise<void> {
  const opts = program().parse().opts<DPOOptions>();
  const engine = await startEngine(opts.backend, opts.lossOnly); // --loss-only: stdout is only the answer
  if (opts.lossOnly) return lossOnly(opts);
  const log = (line: string) => console.log(line);
  const outDir = checkOut(opts.out, opts.force);

  const entries = (await loadPreferenceData(opts.data)).slice(0, opts.limit);
  const { train, val, test } = splitData(entries, { source: opts.data });
  log(`data: ${opts.data}: ${entries.length} entries -> train ${train.length}, val ${val.length}, test ${test.length}`);
  const policy = await loadGPT2Directory(opts.weights, { seed: opts.seed });
  log(`policy: ${path.resolve(opts.weights)}`);
  log(formatParamSummary(policy));
  if (opts.loraRank !== undefined) {
    const before = policy.numTrainableParams();
    const adapter = policy.applyLoRA({ rank: opts.loraRank, alpha: opts.loraAlpha, seed: opts.seed });
    log(formatLoRACounts(before, adapter.numParams()));
  }
  policy.recomputeActivations = opts.recompute ?? (policy.lora !== null && engine.name === "wasm");
  if (policy.recomputeActivations) log("activations: recomputed in the backward pass");
  const reference = await loadReference(policy, opts);
  log(`reference: ${describeReference(reference)}`);

  const collateOptions = { allowedMaxLength: policy.cfg.contextLength };
  const trainLoader = new PreferenceLoader(new PreferenceDataset(train), { batchSize: opts.batchSize, shuffle: true, dropLast: true, seed: opts.seed, collateOptions });
  const valLoader = new PreferenceLoader(new PreferenceDataset(val), { batchSize: opts.batchSize, collateOptions });
  // the book's section 6 compares responses before and after; "before" is the reference, which the policy still equals here
  const compared = [...val.slice(0, 3), ...test.slice(0, 3)];
  const before = await compareResponses(policy, compared, opts.responseTokens);
  claimOut(outDir, opts.force);

  const optimizer = new AdamW(policy.trainableParams(), { lr: opts.lr, weightDecay: opts.weightDecay });
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error("\nstopping after this step (Ctrl-C again to quit at once)");
  };
  process.on("SIGINT", onSigint);
  const progress = runProgress("step", { enabled: process.stdout.isTTY === true, log });
  const started = Date.now();
  const history = await trainModelDPOSimple(policy, reference, trainLoader, valLoader, optimizer, {
    numEpochs: opts.epochs,
    beta: opts.beta,
    evalFreq: opts.evalFreq,
    evalIter: opts.evalIter,
    startContext: formatInput(val[Math.min(2, val.length - 1)]), // the book: format_input(val_data[2])
    log: progress.log,
    onStep: progress.onStep,
    shouldStop: () => interrupted,
  });
  progress.done();
  process.off("SIGINT", onSigint);
  const minutes = (Date.now() - started) / 60000;
  log(history.stopped ? `interrupted after step ${history.steps[history.steps.length - 1] ?? 0}; saving what there is` : `Training completed in ${minutes.toFixed(2)} minutes.`);
  optimizer.dispose();
  const after = await compareResponses(policy, compared, opts.responseTokens);
  await saveDPORun(outDir, { policy, history, minutes, options: opts, compared, before, after }, log);
  policy.dispose();
  if (reference !== "adapter-off") reference.dispose();
}

if (require.main === module) runCli(main);
