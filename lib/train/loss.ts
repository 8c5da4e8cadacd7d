/**
 * The training loss: cross-entropy of the next token, averaged over the target
 * positions that count. Padding positions carry IGNORE_INDEX and are skipped,
 * as PyTorch's `cross_entropy(..., ignore_index=-100)` does in the book.
 */
import * as tf from "@tensorflow/tfjs";
import { DataError } from "../core/errors";
import { IGNORE_INDEX } from "../data/collate";
import type { GPTModel } from "../model/gpt";
import { EXACT_FLOAT_INDEX } from "../engine/webgpu";

/** The targets that count: their flat positions `rows`, their class `ids`, and the number of positions in all. */
export interface KeptTargets {
  rows: Int32Array;
  ids: Int32Array;
  total: number;
}

/**
 * The kept targets (those != IGNORE_INDEX) of `targets`, read asynchronously: the way that works
 * on every engine (a GPU tensor cannot be read synchronously). The trainer and `calcLossLoader`
 * read them so, and pass them to the loss.
 */
export async function readKeptTargets(targets: tf.Tensor, vocab: number, who: string): Promise<KeptTargets> {
  return keptFromValues(await targets.data(), vocab, who);
}

/**
 * `readKeptTargets` for targets whose values are still in host memory: any tensor on the CPU
 * engines, and on webgpu one that no GPU op has used yet (e.g. straight from the collate function).
 */
export function keptTargets(targets: tf.Tensor, vocab: number, who: string): KeptTargets {
  let values: ArrayLike<number>;
  try {
    values = targets.dataSync();
  } catch (err) {
    throw new DataError(
      `${who}: the targets live on the GPU and cannot be read synchronously (${String((err as Error)?.message ?? err).split("\n")[0]}): ` +
        `pass the kept targets, read with \`await readKeptTargets(targets, vocab)\``,
    );
  }
  return keptFromValues(values, vocab, who);
}

/** Throws a DataError, naming `who`, when a target is outside [0, vocab) or every one is ignored (the mean of nothing is NaN). */
export function keptFromValues(t: ArrayLike<number>, vocab: number, who: string): KeptTargets {
  const rows: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const id = t[i];
    if (id === IGNORE_INDEX) continue;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new DataError(`${who}: target ${id} at flat position ${i} is outside [0, ${vocab}) and is not IGNORE_INDEX (${IGNORE_INDEX})`);
    }
    rows.push(i);
    ids.push(id);
  }
  if (rows.length === 0) {
    throw new DataError(`${who}: all ${t.length} targets are IGNORE_INDEX (${IGNORE_INDEX}); there is no token to average over`);
  }
  return { rows: Int32Array.from(rows), ids: Int32Array.from(ids), total: t.length };
}

/**
 * Mean cross-entropy over the kept targets (those != IGNORE_INDEX).
 *
 * logits (B, T, V) float32, targets (B, T) int32 -> scalar (or (N, V) with (N,), as torch takes them).
 * For each kept position: -log softmax(logits)[target] = logsumexp(logits) - logits[target],
 * picked with a gather, without materialising a one-hot of V classes.
 * Throws a DataError when every target is ignored (the mean of nothing would be NaN)
 * or a target is outside [0, V). `kept`: the targets already read (`readKeptTargets`), as
 * the library's own callers pass them; without it they are read here (`keptTargets`).
 */
export function maskedCrossEntropy(logits: tf.Tensor, targets: tf.Tensor, kept?: KeptTargets): tf.Scalar {
  // also (N, V) with (N,), the shapes the book passes to torch's cross_entropy
  const lead = logits.shape.slice(0, -1);
  if (logits.rank < 2 || lead.length !== targets.rank || lead.some((d, i) => d !== targets.shape[i])) {
    throw new DataError(`maskedCrossEntropy: logits [${logits.shape}] and targets [${targets.shape}] must be (B, T, V) and (B, T)`);
  }
  const vocab = logits.shape[logits.rank - 1] as number;
  // targets are input data, already computed: reading them is cheap, and lets us
  // count the kept tokens and check the ids before any logits are touched
  const { rows, ids, total } = kept ?? keptTargets(targets, vocab, "maskedCrossEntropy");
  if (kept !== undefined && total !== targets.size) {
    throw new DataError(`maskedCrossEntropy: the kept targets were read from ${total} positions, the targets have ${targets.size}`);
  }
  const count = rows.length;
  const safe = new Int32Array(total); // ignored positions point at class 0 and are masked below
  const keep = new Float32Array(total);
  rows.forEach((i, j) => {
    safe[i] = ids[j];
    keep[i] = 1;
  });
  return tf.tidy(() => {
    const n = total;
    const flat = logits.reshape([n, vocab]); // (B, T, V) -> (N, V), N = B*T
    // log softmax = x - max - log(sum(exp(x - max))): subtracting the row max first keeps exp()
    // from overflowing; it is torch's cross_entropy = log_softmax + nll_loss. (tf.logSoftmax's
    // gradient is the plain softmax one; tf.logSumExp's also differentiates the max, which is slow.)
    const logProbs = tf.logSoftmax(flat, -1) as tf.Tensor2D; // (N, V)
    const targetLogProb = pickPerRow(logProbs, safe); // (N, V) at (N,) -> (N,)
    const nll = tf.neg(targetLogProb); // (N,), -log p(target)
    return tf.div(tf.sum(tf.mul(nll, tf.tensor1d(keep))), count) as tf.Scalar;
  });
}

/**
 * x[i, ids[i]] for each row: (N, V) -> (N,). A gather on the flattened (N*V,) tensor, in blocks of
 * rows whose flat indices stay below 2^24: the WebGPU backend reads index tensors as float32, which
 * holds every integer only up to 2^24, and past it picks a neighbour without an error.
 */
export function pickPerRow(x: tf.Tensor2D, ids: Int32Array): tf.Tensor1D {
  const [n, v] = x.shape;
  const rowsPerBlock = Math.max(1, Math.floor(EXACT_FLOAT_INDEX / v));
  return tf.tidy(() => {
    const parts: tf.Tensor1D[] = [];
    for (let r0 = 0; r0 < n; r0 += rowsPerBlock) {
      const r1 = Math.min(n, r0 + rowsPerBlock);
      const block = r1 - r0 === n ? x : x.slice([r0, 0], [r1 - r0, v]); // (R, V)
      const flat = Int32Array.from({ length: r1 - r0 }, (_, j) => j * v + ids[r0 + j]); // (R,): row*V + id < 2^24
      parts.push(tf.gather(block.reshape([-1]), tf.tensor1d(flat, "int32")) as tf.Tensor1D);
    }
    return parts.length === 1 ? parts[0] : (tf.concat(parts) as tf.Tensor1D);
  });
}

/** The book's `calc_loss_batch`: the loss of one batch. `training` turns dropout on; `kept` as `maskedCrossEntropy`'s. */
export function calcLossBatch(model: GPTModel, inputs: tf.Tensor2D, targets: tf.Tensor2D, training = false, kept?: KeptTargets): tf.Scalar {
  return tf.tidy(() => maskedCrossEntropy(model.forward(inputs, training), targets, kept));
}

// the shape of a DataLoader batch (lib/data/loader.ts), restated so loss does not depend on data
interface Batch {
  inputs: tf.Tensor2D;
  targets: tf.Tensor2D;
}

/**
 * The book's `calc_loss_loader`: the mean over batches of each batch's mean
 * loss (not the mean over all tokens: a short batch weighs as much as a long one).
 * Uses the first `numBatches` batches (all when omitted; capped at the number there are).
 * No batches at all gives NaN, as the book's `float("nan")`.
 *
 * Batches taken from a generator are disposed after use, since the caller never sees
 * them; batches passed in an array belong to the caller and are left alone
 * (override with `disposeBatches`). `lossBatch` swaps in another implementation of the
 * batch loss, e.g. the trainer's fused one (lib/train/fused-loss.ts).
 * Asynchronous: each batch's loss (the book's `loss.item()`) and targets are read with
 * `await data()`, the one way to read a tensor on every engine, GPUs included.
 */
export async function calcLossLoader(
  batches: Iterable<Batch>,
  model: GPTModel,
  numBatches?: number,
  opts: { disposeBatches?: boolean; lossBatch?: typeof calcLossBatch } = {},
): Promise<number> {
  const lossBatch = opts.lossBatch ?? calcLossBatch;
  const dispose = opts.disposeBatches ?? !Array.isArray(batches);
  if (numBatches !== undefined && numBatches <= 0) return NaN;
  let total = 0;
  let count = 0;
  for (const batch of batches) {
    const kept = await readKeptTargets(batch.targets, model.cfg.vocabSize, "calcLossLoader");
    const loss = lossBatch(model, batch.inputs, batch.targets, false, kept);
    try {
      total += (await loss.data())[0]; // the book's loss.item()
    } finally {
      loss.dispose();
    }
    if (dispose) tf.dispose([batch.inputs, batch.targets]);
    count++;
    // stop before asking a generator for one batch more than we use
    if (numBatches !== undefined && count >= numBatches) break;
  }
  return count === 0 ? NaN : total / count;
}
