/**
 * The data loaders (section 7.4): batches of token sequences, collated into (B, T) int32
 * tensors lazily, one batch at a time.
 *
 * The book uses PyTorch's DataLoader with `torch.manual_seed(123)`: train with batch 8,
 * shuffle and drop_last (935 entries → 116 batches), validation and test with neither.
 * Here the order of epoch e depends only on (seed, e), so a run resumed at epoch e,
 * batch k reproduces exactly the batches an uninterrupted run would have seen
 * (`batches(epoch, k)`). The order is not PyTorch's (a different generator).
 */
import * as tf from "@tensorflow/tfjs";
import { BOOK_SEED } from "../core/book";
import { ConfigError, DataError } from "../core/errors";
import { Rng } from "../core/random";
import { collate, collateArrays, CollateOptions } from "./collate";
import type { TokenizedDataset } from "./dataset";
import { cutBatches, DEFAULT_MEGA_BATCH_FACTOR, lengthGroupedBatches } from "./length-grouping";

export interface DataLoaderOptions {
  /** sequences per batch (the book: 8) */
  batchSize: number;
  /** reshuffle every epoch (the book: train only); default false */
  shuffle?: boolean;
  /** drop the final incomplete batch (the book: train only); default false */
  dropLast?: boolean;
  /** the shuffle seed; default BOOK_SEED, the book's torch.manual_seed(123) */
  seed?: number;
  /** passed to `collate` (padTokenId, ignoreIndex, allowedMaxLength) */
  collateOptions?: CollateOptions;
  /** opt-in length-grouped batches (length-grouping.ts); `{ megaBatchFactor }` sets the mega-batch size in batches */
  groupByLength?: boolean | { megaBatchFactor?: number };
}

/** The generator for one epoch: a function of (seed, epoch) only, so resuming needs no saved state. */
export function epochRng(seed: number, epoch: number): Rng {
  // mix the epoch in with an odd multiplier so (seed, epoch) pairs do not collide for small values
  return new Rng((seed ^ Math.imul(epoch + 1, 0x9e3779b1)) >>> 0);
}

export interface Batch {
  /** (B, T) int32 token ids */
  inputs: tf.Tensor2D;
  /** (B, T) int32 next-token ids, -100 where the loss should ignore the position */
  targets: tf.Tensor2D;
}

/** How a loader batches: entries per batch, reshuffled every epoch or not, the last incomplete batch dropped or not, the seed. */
export interface Batching {
  batchSize: number;
  shuffle: boolean;
  dropLast: boolean;
  seed: number;
}

/** A loader's batching options, checked (`who` names the loader in the error), with their defaults: in order, every batch kept, BOOK_SEED. */
export function batchingOptions(who: string, opts: { batchSize: number } & Partial<Omit<Batching, "batchSize">>): Batching {
  if (!Number.isInteger(opts.batchSize) || opts.batchSize < 1) {
    throw new ConfigError(`${who}: batchSize must be a positive integer, got ${opts.batchSize}`);
  }
  return { batchSize: opts.batchSize, shuffle: opts.shuffle ?? false, dropLast: opts.dropLast ?? false, seed: opts.seed ?? BOOK_SEED };
}

export class DataLoader implements Iterable<Batch> {
  readonly dataset: TokenizedDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly collateOptions: CollateOptions;
  /** mega-batch factor when grouping by length, undefined for plain batches */
  readonly megaBatchFactor: number | undefined;

  constructor(dataset: TokenizedDataset, opts: DataLoaderOptions) {
    this.dataset = dataset;
    ({ batchSize: this.batchSize, shuffle: this.shuffle, dropLast: this.dropLast, seed: this.seed } = batchingOptions("DataLoader", opts));
    this.collateOptions = opts.collateOptions ?? {};
    const group = opts.groupByLength;
    this.megaBatchFactor = !group
      ? undefined
      : typeof group === "object"
        ? group.megaBatchFactor ?? DEFAULT_MEGA_BATCH_FACTOR
        : DEFAULT_MEGA_BATCH_FACTOR;
    if (this.megaBatchFactor !== undefined && !(Number.isInteger(this.megaBatchFactor) && this.megaBatchFactor > 0)) {
      throw new ConfigError(`DataLoader: megaBatchFactor must be a positive integer, got ${this.megaBatchFactor}`);
    }
    if (this.numBatches === 0) {
      // a loader with no batches would give a NaN loss (mean of nothing) instead of an error
      throw new DataError(
        `DataLoader: ${dataset.encoded.length} sequences give no batch of ${this.batchSize}` +
          (this.dropLast ? " with dropLast" : ""),
      );
    }
  }

  get length(): number {
    return this.dataset.encoded.length;
  }

  /** Batches per epoch (the same for plain and length-grouped batches). */
  get numBatches(): number {
    const n = this.dataset.encoded.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices of every batch of `epoch`, in order. */
  batchIndices(epoch = 0): number[][] {
    const n = this.dataset.encoded.length;
    const rng = this.shuffle ? epochRng(this.seed, epoch) : undefined;
    if (this.megaBatchFactor !== undefined) {
      const lengths = this.dataset.encoded.map((ids) => ids.length);
      return lengthGroupedBatches(lengths, {
        batchSize: this.batchSize,
        dropLast: this.dropLast,
        rng,
        megaBatchFactor: this.megaBatchFactor,
      });
    }
    const order = rng ? rng.permutation(n) : Array.from({ length: n }, (_, i) => i);
    return cutBatches(order, this.batchSize, this.dropLast);
  }

  /** The prompt lengths of a batch's rows when the dataset masks instructions (exercise 7.2), else undefined. */
  private promptLengths(indices: number[]): number[] | undefined {
    const lengths = this.dataset.promptLengths;
    return lengths === undefined ? undefined : indices.map((i) => lengths[i]);
  }

  /** Plain-array batches (no tensors) of `epoch`, from batch `startBatch` on. */
  *arrayBatches(epoch = 0, startBatch = 0): Generator<{ inputs: number[][]; targets: number[][] }> {
    for (const indices of this.batchIndices(epoch).slice(startBatch)) {
      yield collateArrays(indices.map((i) => this.dataset.encoded[i]), this.collateOptions, this.promptLengths(indices));
    }
  }

  /**
   * Tensor batches of `epoch`, from batch `startBatch` on (to resume mid-epoch). Each batch
   * is created when asked for; the caller disposes its two tensors.
   */
  *batches(epoch = 0, startBatch = 0): Generator<Batch> {
    for (const indices of this.batchIndices(epoch).slice(startBatch)) {
      yield collate(indices.map((i) => this.dataset.encoded[i]), this.collateOptions, this.promptLengths(indices));
    }
  }

  /** `for (const { inputs, targets } of loader)`: the batches of epoch 0 (for val/test loaders). */
  [Symbol.iterator](): Generator<Batch> {
    return this.batches(0);
  }
}
