/**
 * How much of each batch is padding: the measure behind length-grouped batching.
 *
 * A batch of B sequences becomes a (B, T) input tensor, T = its longest sequence (cut to
 * `allowedMaxLength`). A sequence of L tokens fills L positions; the other T - L positions
 * (its end-of-text and the pad tokens after it) are computed by the model and then
 * thrown away by the -100 mask. Padding fraction = padding positions / (B × T), summed
 * over the batches.
 */
import { BOOK_BATCH_SIZE, BOOK_SEED } from "../core/book";
import type { TokenizedDataset } from "./dataset";
import { DataLoader } from "./loader";

export interface BatchPadding {
  /** position of the batch in the epoch */
  batch: number;
  /** sequences in the batch (B) */
  size: number;
  /** padded length (T) */
  length: number;
  /** positions holding a sequence's own tokens */
  realTokens: number;
  /** positions holding padding: B × T - realTokens */
  paddingTokens: number;
  /** paddingTokens / (B × T) */
  paddingFraction: number;
}

export interface PaddingSummary {
  batches: BatchPadding[];
  /** B × T summed over the batches: every position the model computes */
  totalTokens: number;
  paddingTokens: number;
  /** paddingTokens / totalTokens */
  paddingFraction: number;
}

/** Padding of each index batch, given the token count of every sequence. */
export function batchPadding(batches: number[][], lengths: number[], allowedMaxLength?: number): BatchPadding[] {
  return batches.map((indices, batch) => {
    const longest = Math.max(...indices.map((i) => lengths[i]));
    const length = allowedMaxLength === undefined ? longest : Math.min(longest, allowedMaxLength);
    const realTokens = indices.reduce((sum, i) => sum + Math.min(lengths[i], length), 0);
    const total = indices.length * length;
    return {
      batch,
      size: indices.length,
      length,
      realTokens,
      paddingTokens: total - realTokens,
      paddingFraction: total === 0 ? 0 : (total - realTokens) / total,
    };
  });
}

export function summarizePadding(batches: BatchPadding[]): PaddingSummary {
  const totalTokens = batches.reduce((sum, b) => sum + b.size * b.length, 0);
  const paddingTokens = batches.reduce((sum, b) => sum + b.paddingTokens, 0);
  return { batches, totalTokens, paddingTokens, paddingFraction: totalTokens === 0 ? 0 : paddingTokens / totalTokens };
}

/** Padding of one epoch of a loader's batches. */
export function loaderPadding(loader: DataLoader, epoch = 0): PaddingSummary {
  const lengths = loader.dataset.encoded.map((ids) => ids.length);
  return summarizePadding(batchPadding(loader.batchIndices(epoch), lengths, loader.collateOptions.allowedMaxLength));
}

export interface PaddingComparisonOptions {
  /** default BOOK_BATCH_SIZE, the book's train loader */
  batchSize?: number;
  /** default BOOK_SEED */
  seed?: number;
  /** default 0 */
  epoch?: number;
  /** default true, the book's train loader */
  dropLast?: boolean;
  /** mega-batch size in batches for the grouped loader; default 50 */
  megaBatchFactor?: number;
  allowedMaxLength?: number;
}

/**
 * Padding of plain shuffled batches vs length-grouped batches over the same data, seed and
 * epoch, with the book's train-loader settings by default. Each summary has the per-batch
 * numbers (for a chart) and the totals.
 */
export function comparePadding(
  dataset: TokenizedDataset,
  opts: PaddingComparisonOptions = {},
): { plain: PaddingSummary; grouped: PaddingSummary } {
  const common = {
    batchSize: opts.batchSize ?? BOOK_BATCH_SIZE,
    shuffle: true,
    dropLast: opts.dropLast ?? true,
    seed: opts.seed ?? BOOK_SEED,
    collateOptions: { allowedMaxLength: opts.allowedMaxLength },
  };
  const epoch = opts.epoch ?? 0;
  const plain = new DataLoader(dataset, common);
  const grouped = new DataLoader(dataset, { ...common, groupByLength: { megaBatchFactor: opts.megaBatchFactor } });
  return { plain: loaderPadding(plain, epoch), grouped: loaderPadding(grouped, epoch) };
}
