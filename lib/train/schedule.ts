/**
 * The book's training schedule (`train_model_simple`, chapter 5, used again in 7.6) as a list of
 * events: which batch each optimizer step trains on, and after which steps the loop evaluates on
 * which batches. `trainModelSimple` (train.ts) runs it; the bench (lib/cli/bench.ts) replays it
 * as plain arrays on this library and on PyTorch, so the two cannot drift apart.
 *
 * `global_step` starts at -1 and is incremented after each optimizer step; evaluation runs when
 * `global_step % evalFreq == 0`: right after the first step ("Step 000000"), then after steps
 * 5, 10, … (the 1st, 6th, 11th… update).
 *
 * Evaluation batches: PyTorch's `iter(train_loader)` reshuffles on every evaluation, so the book's
 * train loss is measured on 5 fresh random batches each time. Here the k-th evaluation reads the
 * first `evalIter` batches of the train loader's order for "epoch" EVAL_ORDER_OFFSET + k: fresh
 * random batches too, but a function of (seed, k) only, so a resumed run measures the same ones.
 * The val loader is not shuffled: its first `evalIter` batches, as in the book.
 */
import type { Batch, DataLoader } from "../data/loader";

/** Train-loader orders for evaluation are drawn as "epochs" from here on, far from real epochs. */
export const EVAL_ORDER_OFFSET = 1_000_000;

/** A batch as plain token ids (what the bench hands to PyTorch): (B, T) inputs and targets. */
export type ArrayBatch = { inputs: number[][]; targets: number[][] };

/** Where a schedule starts: a fresh run, or a resumed run's position (see TrainPosition in train.ts). */
export interface SchedulePosition {
  /** epoch (0-based) of the next step */
  epoch: number;
  /** index within that epoch of the next batch */
  batch: number;
  /** the book's global_step: -1 before the first step */
  globalStep: number;
  /** evaluations done so far */
  evalCount: number;
}
const START: SchedulePosition = { epoch: 0, batch: 0, globalStep: -1, evalCount: 0 };

/**
 * Reads a loader's batches of one epoch from a batch on: as tensors (the trainer) or plain arrays (the bench).
 * `L` is the loader: chapter 7's `DataLoader`, or DPO's `PreferenceLoader` (the same schedule, other batches).
 */
export type BatchReader<B, L = DataLoader> = (loader: L, epoch: number, startBatch: number) => Iterable<B>;
export const readTensors: BatchReader<Batch> = (loader, epoch, startBatch) => loader.batches(epoch, startBatch);
export const readArrays: BatchReader<ArrayBatch> = (loader, epoch, startBatch) => loader.arrayBatches(epoch, startBatch);

/** The first `n` items of `items`, without asking a generator for one more. */
function* take<B>(items: Iterable<B>, n: number): Generator<B> {
  if (n <= 0) return;
  let count = 0;
  for (const item of items) {
    yield item;
    if (++count >= n) return;
  }
}

/**
 * The batches of the `evalIndex`-th evaluation (see the file comment): the first `evalIter` train
 * batches of the order for "epoch" EVAL_ORDER_OFFSET + evalIndex, and the first `evalIter` val batches.
 * Lazy: a batch is made when it is read.
 */
export function evalBatches<B, L = DataLoader>(
  read: BatchReader<B, L>,
  trainLoader: L,
  valLoader: L,
  evalIter: number,
  evalIndex: number,
): { train: Iterable<B>; val: Iterable<B> } {
  return { train: take(read(trainLoader, EVAL_ORDER_OFFSET + evalIndex, 0), evalIter), val: take(read(valLoader, 0, 0), evalIter) };
}

/** One event of the book's schedule: an optimizer step (with the evaluation that follows it, if any), or an epoch's end. */
export type ScheduleEvent<B> =
  | {
      kind: "step";
      epoch: number;
      /** index of this batch within its epoch */
      batch: number;
      /** the book's global_step once this step is taken (0 for the first) */
      globalStep: number;
      data: B;
      /** present when the book evaluates right after this step: the evaluation's number and batches */
      eval?: { index: number; train: Iterable<B>; val: Iterable<B> };
    }
  | { kind: "epochEnd"; epoch: number };

/**
 * The schedule of `trainModelSimple`, in order, from `from` (a resumed run's position) on: every
 * train batch of every epoch, an evaluation after global steps 0, evalFreq, 2·evalFreq, …, and the
 * end of each epoch. The trainer runs it; the bench replays it (as plain arrays) on both engines.
 * Batches are read lazily: leaving a for-of over it early makes no batch for nothing.
 */
export function* trainSchedule<B, L = DataLoader>(
  read: BatchReader<B, L>,
  trainLoader: L,
  valLoader: L,
  opts: { numEpochs: number; evalFreq: number; evalIter: number },
  from: SchedulePosition = START,
): Generator<ScheduleEvent<B>> {
  let { globalStep, evalCount } = from;
  for (let epoch = from.epoch, start = from.batch; epoch < opts.numEpochs; epoch++, start = 0) {
    let batch = start;
    for (const data of read(trainLoader, epoch, start)) {
      globalStep += 1;
      const evaluate = globalStep % opts.evalFreq === 0;
      const evalAt = evaluate ? { index: evalCount, ...evalBatches(read, trainLoader, valLoader, opts.evalIter, evalCount) } : undefined;
      if (evaluate) evalCount += 1;
      yield { kind: "step", epoch, batch, globalStep, data, eval: evalAt };
      batch += 1;
    }
    yield { kind: "epochEnd", epoch };
  }
}
