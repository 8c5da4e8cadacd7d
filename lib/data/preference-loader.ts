/**
 * The DPO data loaders (ch07/04, section 2.4): batches of preference examples, collated by the book's
 * DPO collate function (preference-collate.ts) one batch at a time. As in chapter 7: the training
 * loader shuffles (seeded, BOOK_SEED) and drops its last incomplete batch, validation and test keep
 * everything in order. The order of epoch e is a function of (seed, e) alone, the same generator as
 * `DataLoader` (loader.ts), not PyTorch's.
 *
 * Batches are plain arrays (`PreferenceBatch`): the DPO step makes the tensors it needs from them.
 * Every entry is checked when the loader is made: one whose response would be cut off entirely by
 * `allowedMaxLength` is refused then, naming the entry, not in the middle of training.
 */
import { DataError } from "../core/errors";
import { cutBatches } from "./length-grouping";
import { batchingOptions, epochRng } from "./loader";
import { collatePreference, PreferenceBatch, PreferenceCollateOptions } from "./preference-collate";
import type { PreferenceDataset } from "./preference-dataset";

export interface PreferenceLoaderOptions {
  /** entries per batch (the book: 8) */
  batchSize: number;
  /** reshuffle every epoch (the book: train only); default false */
  shuffle?: boolean;
  /** drop the last incomplete batch (the book: train only); default false */
  dropLast?: boolean;
  /** the shuffle seed; default BOOK_SEED */
  seed?: number;
  /** passed to `collatePreference` */
  collateOptions?: PreferenceCollateOptions;
}

export class PreferenceLoader implements Iterable<PreferenceBatch> {
  readonly dataset: PreferenceDataset;
  readonly batchSize: number;
  readonly shuffle: boolean;
  readonly dropLast: boolean;
  readonly seed: number;
  readonly collateOptions: PreferenceCollateOptions;

  constructor(dataset: PreferenceDataset, opts: PreferenceLoaderOptions) {
    this.dataset = dataset;
    ({ batchSize: this.batchSize, shuffle: this.shuffle, dropLast: this.dropLast, seed: this.seed } = batchingOptions("PreferenceLoader", opts));
    this.collateOptions = opts.collateOptions ?? {};
    if (this.numBatches === 0) {
      throw new DataError(`PreferenceLoader: ${dataset.length} entries give no batch of ${this.batchSize}${this.dropLast ? " with dropLast" : ""}`);
    }
    // each entry alone: throws naming the first entry whose response is cut off entirely
    dataset.encoded.forEach((example, i) => collatePreference([example], this.collateOptions, [i]));
  }

  /** Entries in the dataset. */
  get length(): number {
    return this.dataset.length;
  }

  /** Batches per epoch. */
  get numBatches(): number {
    const n = this.dataset.length;
    return this.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  /** The dataset indices of every batch of `epoch`, in order. */
  batchIndices(epoch = 0): number[][] {
    const n = this.dataset.length;
    const order = this.shuffle ? epochRng(this.seed, epoch).permutation(n) : Array.from({ length: n }, (_, i) => i);
    return cutBatches(order, this.batchSize, this.dropLast);
  }

  /** The collated batches of `epoch`, from batch `startBatch` on, each made when asked for. */
  *batches(epoch = 0, startBatch = 0): Generator<PreferenceBatch> {
    for (const indices of this.batchIndices(epoch).slice(startBatch)) {
      yield collatePreference(indices.map((i) => this.dataset.encoded[i]), this.collateOptions, indices);
    }
  }

  /** `for (const batch of loader)`: the batches of epoch 0. */
  [Symbol.iterator](): Generator<PreferenceBatch> {
    return this.batches(0);
  }
}
