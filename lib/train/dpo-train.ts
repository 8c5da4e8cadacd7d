/**
 * The book's DPO training loop, `train_model_dpo_simple` (ch07/04, section 5): chapter 5's
 * `train_model_simple` with the DPO loss in place of the cross-entropy, and the rewards tracked too.
 *
 *   for each epoch, for each training batch:
 *     the DPO loss of the batch (policy against the frozen reference), its gradients, an AdamW step,
 *     tokens seen += the batch's chosen ids (the book's `batch["chosen"].numel()`);
 *     every `evalFreq` steps: loss and mean rewards of `evalIter` train and val batches, and the line
 *     "Ep 1 (Step 000005): Train loss 0.690, Val loss 0.691, Train reward margins 0.070, Val reward margins 0.052";
 *   after each epoch: a sample continuation of a fixed prompt.
 *
 * The schedule (which batch each step takes, when to evaluate and on which batches) is chapter 7's own
 * (lib/train/schedule.ts), run over the preference loaders.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import type { PreferenceBatch } from "../data/preference-collate";
import type { PreferenceLoader } from "../data/preference-loader";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "./adamw";
import { dpoInputs, dpoLossFromReference, dpoLossLoader, DPOLoaderResult } from "./dpo-batch";
import { validateBeta } from "./dpo-loss";
import { dpoMemoryProblem } from "./dpo-memory";
import { DPOReference, referenceLogProbs } from "./dpo-reference";
import { gradientStep } from "./gradient-step";
import { BatchReader, evalBatches, trainSchedule } from "./schedule";
import { generateSample, StepInfo } from "./train";

/** The preference loaders' batches as the schedule reads them. */
export const readPreferenceBatches: BatchReader<PreferenceBatch, PreferenceLoader> = (loader, epoch, startBatch) => loader.batches(epoch, startBatch);

/** The book's `tracking` dict, plus where each evaluation was taken. */
export interface DPOHistory {
  trainLosses: number[];
  valLosses: number[];
  trainChosenRewards: number[];
  trainRejectedRewards: number[];
  valChosenRewards: number[];
  valRejectedRewards: number[];
  /** chosen-sequence tokens (padding included) seen before each evaluation */
  tokensSeen: number[];
  /** global step (0-based) of each evaluation */
  steps: number[];
  /** fractional epoch of each evaluation */
  epochsAt: number[];
}

/** One evaluation: the train and val loaders' means. */
export interface DPOEvalInfo {
  epoch: number;
  step: number;
  train: DPOLoaderResult;
  val: DPOLoaderResult;
  tokensSeen: number;
  /** the book's line */
  line: string;
}

export interface DPOTrainOptions {
  numEpochs: number;
  /** β of the DPO loss (the book: 0.1) */
  beta: number;
  /** evaluate every this many steps (the book: 5) */
  evalFreq: number;
  /** batches per evaluation (the book: 5) */
  evalIter: number;
  /** the prompt continued after each epoch (the book: format_input(val_data[2])) */
  startContext: string;
  /** tokens generated for that sample (default 50) */
  sampleTokens?: number;
  /** where the log lines and samples go; default console.log */
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEval?: (info: DPOEvalInfo) => void;
  /** checked after every step; true stops the loop */
  shouldStop?: () => boolean;
}

/** The reward margins (chosen − rejected) of a history's evaluations: what the book's second plot shows. */
export function rewardMargins(h: DPOHistory): { train: number[]; val: number[] } {
  return { train: h.trainChosenRewards.map((c, i) => c - h.trainRejectedRewards[i]), val: h.valChosenRewards.map((c, i) => c - h.valRejectedRewards[i]) };
}

/** The book's log line: `Ep 1 (Step 000000): Train loss 0.692, Val loss 0.693, Train reward margins 0.019, Val reward margins 0.009`. */
export function formatDPOEvalLine(epoch: number, step: number, train: DPOLoaderResult, val: DPOLoaderResult): string {
  const f = (x: number) => x.toFixed(3);
  return (
    `Ep ${epoch + 1} (Step ${String(step).padStart(6, "0")}): Train loss ${f(train.loss)}, Val loss ${f(val.loss)}, ` +
    `Train reward margins ${f(train.chosenReward - train.rejectedReward)}, Val reward margins ${f(val.chosenReward - val.rejectedReward)}`
  );
}

/** One DPO step on one batch: the reference's log-probabilities outside the tape, then the policy's loss, gradients and AdamW. */
export async function dpoTrainStep(policy: GPTModel, reference: DPOReference, optimizer: AdamW, batch: PreferenceBatch, beta: number, step: number): Promise<number> {
  const inputs = dpoInputs(batch, policy.cfg.vocabSize);
  // the frozen reference runs before the tape starts: no gradient reaches it (nor LoRA's A and B through it)
  const refLogProbs = tf.tidy(() => referenceLogProbs(reference, policy, inputs.ids, inputs.scored));
  try {
    const lossFn = () => {
      const parts = dpoLossFromReference(policy, inputs, refLogProbs, beta, true);
      tf.dispose([parts.chosenRewards, parts.rejectedRewards]); // not on the loss's path: the step needs the loss alone
      return parts.loss;
    };
    return await gradientStep(policy, optimizer, lossFn, `step ${step}`);
  } finally {
    tf.dispose([inputs.ids, refLogProbs]);
  }
}

/** The book's `evaluate_dpo_loss_loader`: loss and rewards of `evalIter` train and val batches (the `evalIndex`-th evaluation's). */
export async function evaluateDPO(
  policy: GPTModel,
  reference: DPOReference,
  trainLoader: PreferenceLoader,
  valLoader: PreferenceLoader,
  beta: number,
  evalIter: number,
  evalIndex = 0,
): Promise<{ train: DPOLoaderResult; val: DPOLoaderResult }> {
  const batches = evalBatches(readPreferenceBatches, trainLoader, valLoader, evalIter, evalIndex);
  return { train: await dpoLossLoader(batches.train, policy, reference, beta), val: await dpoLossLoader(batches.val, policy, reference, beta) };
}

/** Let timers, progress bars and signal handlers run between steps. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The book's `train_model_dpo_simple`; see the file comment. */
export async function trainModelDPOSimple(
  policy: GPTModel,
  reference: DPOReference,
  trainLoader: PreferenceLoader,
  valLoader: PreferenceLoader,
  optimizer: AdamW,
  opts: DPOTrainOptions,
): Promise<DPOHistory & { stopped: boolean }> {
  validateBeta(opts.beta);
  const log = opts.log ?? ((line: string) => console.log(line));
  const memoryProblem = dpoMemoryProblem(policy, reference);
  if (memoryProblem) throw new ConfigError(memoryProblem);
  const h: DPOHistory = { trainLosses: [], valLosses: [], trainChosenRewards: [], trainRejectedRewards: [], valChosenRewards: [], valRejectedRewards: [], tokensSeen: [], steps: [], epochsAt: [] };
  const perEpoch = trainLoader.numBatches;
  const totalSteps = opts.numEpochs * perEpoch;
  let tokensSeen = 0;
  let stopped = false;
  for (const event of trainSchedule(readPreferenceBatches, trainLoader, valLoader, opts)) {
    if (event.kind === "epochEnd") {
      log(await generateSample(policy, opts.startContext, opts.sampleTokens ?? 50));
      continue;
    }
    const batch = event.data;
    const loss = await dpoTrainStep(policy, reference, optimizer, batch, opts.beta, event.globalStep);
    tokensSeen += batch.chosen.length * batch.chosen[0].length; // the book's batch["chosen"].numel()
    opts.onStep?.({ epoch: event.epoch, step: event.globalStep, totalSteps, batch: event.batch, batchesPerEpoch: perEpoch, loss, tokensSeen });
    if (event.eval) {
      const train = await dpoLossLoader(event.eval.train, policy, reference, opts.beta);
      const val = await dpoLossLoader(event.eval.val, policy, reference, opts.beta);
      h.trainLosses.push(train.loss);
      h.valLosses.push(val.loss);
      h.trainChosenRewards.push(train.chosenReward);
      h.trainRejectedRewards.push(train.rejectedReward);
      h.valChosenRewards.push(val.chosenReward);
      h.valRejectedRewards.push(val.rejectedReward);
      h.tokensSeen.push(tokensSeen);
      h.steps.push(event.globalStep);
      h.epochsAt.push(event.epoch + (event.batch + 1) / perEpoch);
      const line = formatDPOEvalLine(event.epoch, event.globalStep, train, val);
      log(line);
      opts.onEval?.({ epoch: event.epoch, step: event.globalStep, train, val, tokensSeen, line });
    }
    await yieldToEventLoop();
    if (opts.shouldStop?.()) {
      stopped = true;
      break; // leaving the for-of closes the schedule: no batch is collated for nothing
    }
  }
  return { ...h, stopped };
}
