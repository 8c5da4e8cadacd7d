/**
 * The book's training loop, `train_model_simple` (chapter 5, used again in 7.6):
 *
 *   for each epoch, for each training batch:
 *     zero the gradients, compute the loss, backpropagate, take an optimizer step,
 *     count the tokens seen;
 *     every `evalFreq` steps: the mean loss of `evalIter` train and val batches;
 *   after each epoch: print a sample continuation of a fixed prompt.
 *
 * The schedule (which batch each step trains on, when the loop evaluates and on which
 * batches) is lib/train/schedule.ts's `trainSchedule`; this loop runs it, the bench replays it.
 *
 * Gradients: TF.js has no `.grad` fields to zero; `tf.variableGrads` returns fresh
 * gradients for one loss each step, which is what `zero_grad(); loss.backward()` amounts to.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import type { Batch, DataLoader } from "../data/loader";
import type { GPTModel } from "../model/gpt";
import { encodeText, decodeTokens } from "../data/tokenizer";
import { generateIds } from "../generate/generate";
import { AdamW } from "./adamw";
import { trainingMemoryProblem } from "../engine/memory";
import { calcLossLoader } from "./loss";
import { evalBatches, readArrays, readTensors, trainSchedule } from "./schedule";
import { LOSS_BATCH, LossImpl } from "./step";
import { makeStepper, StepPath } from "./stepper";

// the schedule belongs to this loop: importable from here as well
export { EVAL_ORDER_OFFSET, evalBatches, readArrays, readTensors, trainSchedule } from "./schedule";
export type { ArrayBatch, BatchReader, ScheduleEvent } from "./schedule";

// one step on TF.js (step.ts), and how the loop picks it or the GPU path's (stepper.ts); importable from here
export { trainStep } from "./step";
export type { LossImpl } from "./step";

// a NaN or infinite loss: the error lives with the others (the GPU trainer throws it too); importable from here
export { TrainingError } from "../core/errors";

/** What the loop has measured so far; the book's three lists plus where each point was taken. */
export interface TrainHistory {
  /** mean loss of `evalIter` train batches at each evaluation */
  trainLosses: number[];
  /** mean loss of `evalIter` val batches at each evaluation */
  valLosses: number[];
  /** tokens (padding included, as the book's `input_batch.numel()`) seen before each evaluation */
  tokensSeen: number[];
  /** global step (0-based, the book's `global_step`) of each evaluation */
  steps: number[];
  /** fractional epoch of each evaluation: epoch + batches done / batches per epoch */
  epochsAt: number[];
}

/** Where the loop stands; enough, with the model and optimizer, to resume exactly. */
export interface TrainPosition {
  /** epoch (0-based) the next step belongs to */
  epoch: number;
  /** index within that epoch of the next batch */
  batch: number;
  /** the book's global_step: -1 before the first step */
  globalStep: number;
  tokensSeen: number;
  /** evaluations done so far (chooses the next evaluation's train batches) */
  evalCount: number;
}

export interface StepInfo {
  epoch: number;
  /** global step just taken (0-based) */
  step: number;
  /** steps in the whole run (epochs × batches per epoch) */
  totalSteps: number;
  batch: number;
  batchesPerEpoch: number;
  /** this batch's training loss */
  loss: number;
  tokensSeen: number;
}

export interface EvalInfo {
  epoch: number;
  step: number;
  trainLoss: number;
  valLoss: number;
  tokensSeen: number;
  /** the book's line, e.g. "Ep 1 (Step 000005): Train loss 1.174, Val loss 1.103" */
  line: string;
}

export interface TrainOptions {
  numEpochs: number;
  /** evaluate every this many steps (the book: 5) */
  evalFreq: number;
  /** batches per evaluation (the book: 5) */
  evalIter: number;
  /** the prompt continued after each epoch (the book: formatInput(valData[0])) */
  startContext: string;
  /** tokens generated for that sample (the book's generate_text_simple: 50) */
  sampleTokens?: number;
  /** where the log lines and samples go; default console.log */
  log?: (line: string) => void;
  onStep?: (info: StepInfo) => void;
  onEval?: (info: EvalInfo) => void;
  /** after each epoch, with the sample text and the position to resume from (save a checkpoint here) */
  onEpochEnd?: (info: { epoch: number; sample: string; position: TrainPosition; history: TrainHistory }) => void | Promise<void>;
  /** checked after every step; return true to stop early (e.g. on Ctrl-C) */
  shouldStop?: () => boolean;
  /** continue from a checkpoint: the position and the history so far */
  resume?: { position: TrainPosition; history: TrainHistory };
  /** the loss implementation (default "fused"; both compute the book's loss) */
  loss?: LossImpl;
  /** TF.js ops, or the course's WebGPU kernels on the webgpu engine (default "auto": the GPU path where it runs) */
  path?: StepPath;
}

export interface TrainResult extends TrainHistory {
  /** where the loop ended (epoch = numEpochs when it ran to the end) */
  position: TrainPosition;
  /** true when `shouldStop` ended it early */
  stopped: boolean;
}

/** The book's log line: `Ep {epoch+1} (Step {global_step:06d}): Train loss {:.3f}, Val loss {:.3f}`. */
export function formatEvalLine(epoch: number, step: number, trainLoss: number, valLoss: number): string {
  return `Ep ${epoch + 1} (Step ${String(step).padStart(6, "0")}): Train loss ${trainLoss.toFixed(3)}, Val loss ${valLoss.toFixed(3)}`;
}

/** The book's `evaluate_model`: mean loss of `evalIter` train and val batches, without dropout. */
export async function evaluateModel(
  model: GPTModel,
  trainLoader: DataLoader,
  valLoader: DataLoader,
  evalIter: number,
  evalIndex = 0,
  loss: LossImpl = "fused",
): Promise<{ trainLoss: number; valLoss: number }> {
  const batches = evalBatches(readTensors, trainLoader, valLoader, evalIter, evalIndex);
  const lossBatch = LOSS_BATCH[loss];
  // calcLossLoader disposes each batch after use (they come from a generator)
  const trainLoss = await calcLossLoader(batches.train, model, undefined, { lossBatch });
  const valLoss = await calcLossLoader(batches.val, model, undefined, { lossBatch });
  return { trainLoss, valLoss };
}

/** The book's `generate_and_print_sample`: greedy continuation, newlines shown as spaces. */
export async function generateSample(model: GPTModel, startContext: string, maxNewTokens = 50): Promise<string> {
  const [ids] = await generateIds(model, [encodeText(startContext)], {
    maxNewTokens,
    contextSize: model.cfg.contextLength,
    kvCache: true, // same tokens as the plain loop, faster
  });
  return decodeTokens(ids).replace(/\n/g, " ");
}

const emptyHistory = (): TrainHistory => ({ trainLosses: [], valLosses: [], tokensSeen: [], steps: [], epochsAt: [] });

/** Let timers, progress bars, notebook displays and signal handlers run between steps. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** The book's `train_model_simple`; see the file comment. */
export async function trainModelSimple(
  model: GPTModel,
  trainLoader: DataLoader,
  valLoader: DataLoader,
  optimizer: AdamW,
  opts: TrainOptions,
): Promise<TrainResult> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const memoryProblem = trainingMemoryProblem(model.numParams(), undefined, model.lora?.numParams());
  if (memoryProblem) throw new ConfigError(memoryProblem);
  const history = opts.resume ? structuredClone(opts.resume.history) : emptyHistory();
  const pos: TrainPosition = opts.resume
    ? { ...opts.resume.position }
    : { epoch: 0, batch: 0, globalStep: -1, tokensSeen: 0, evalCount: 0 };
  const perEpoch = trainLoader.numBatches;
  const totalSteps = opts.numEpochs * perEpoch;
  let stopped = false;

  const stepper = await makeStepper(model, optimizer, { loss: opts.loss, path: opts.path });
  try {
    for (const event of trainSchedule(readArrays, trainLoader, valLoader, opts, pos)) {
      if (event.kind === "epochEnd") {
        await stepper.sync(); // the TF.js model and optimizer catch up with the GPU path: the sample and checkpoint read them
        const sample = await generateSample(model, opts.startContext, opts.sampleTokens ?? 50);
        log(sample);
        pos.epoch = event.epoch + 1;
        pos.batch = 0;
        await opts.onEpochEnd?.({ epoch: event.epoch, sample, position: { ...pos }, history: structuredClone(history) });
        continue;
      }
      const batch = event.data;
      const loss = await stepper.step(batch, event.globalStep);
      pos.tokensSeen += batch.inputs.length * batch.inputs[0].length; // padding included, as the book's input_batch.numel()
      pos.epoch = event.epoch;
      pos.globalStep = event.globalStep;
      pos.batch = event.batch + 1;
      opts.onStep?.({ epoch: pos.epoch, step: pos.globalStep, totalSteps, batch: event.batch, batchesPerEpoch: perEpoch, loss, tokensSeen: pos.tokensSeen });
      if (event.eval) {
        const trainLoss = await stepper.evalLoss(event.eval.train);
        const valLoss = await stepper.evalLoss(event.eval.val);
        pos.evalCount = event.eval.index + 1;
        history.trainLosses.push(trainLoss);
        history.valLosses.push(valLoss);
        history.tokensSeen.push(pos.tokensSeen);
        history.steps.push(pos.globalStep);
        history.epochsAt.push(pos.epoch + pos.batch / perEpoch);
        const line = formatEvalLine(pos.epoch, pos.globalStep, trainLoss, valLoss);
        log(line);
        opts.onEval?.({ epoch: pos.epoch, step: pos.globalStep, trainLoss, valLoss, tokensSeen: pos.tokensSeen, line });
      }
      await yieldToEventLoop();
      if (opts.shouldStop?.()) {
        stopped = true;
        break; // leaving the for-of closes the schedule: no batch is collated for nothing
      }
    }
  } finally {
    await stepper.sync(); // whatever ended the loop, the model holds the weights trained so far
    stepper.dispose();
  }
  return { ...history, position: { ...pos }, stopped };
}
