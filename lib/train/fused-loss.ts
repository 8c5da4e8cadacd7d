/**
 * The same loss as `calcLossBatch` (lib/train/loss.ts), computed faster. The trainer uses it;
 * `maskedCrossEntropy` stays the readable definition, and test/fused-loss.test.ts checks the
 * two agree (loss and every gradient).
 *
 * Three changes, all exact in real arithmetic:
 *
 * 1. The output head only over the kept positions. A padding position (target IGNORE_INDEX)
 *    adds nothing to the loss or to any gradient, yet the plain path multiplies it through the
 *    (C, V) head and a V-wide softmax like any other. Here the hidden states of the kept
 *    positions are gathered first: (N, C) -> (K, C), K = kept targets. On the book's shuffled
 *    batches about 19% of positions are padding (`npm run padding-report`).
 *
 * 2. Softmax cross-entropy as one op with its own gradient. `tf.logSoftmax` + gather makes
 *    TF.js run exp over the (K, V) logits twice (forward, and again in the backward pass) plus
 *    several V-wide subtractions and sums. Here the forward pass is one `tf.softmax` (XNNPACK's
 *    vectorised kernel on wasm), and the backward pass reuses its probabilities:
 *
 *      loss      = mean_k [ logsumexp(x_k) - x_k[t_k] ]
 *      dloss/dx_k = (softmax(x_k) - onehot(t_k)) / K
 *
 *    logsumexp comes out of the softmax without another exp: the largest probability is
 *    exp(max - max) / Σ exp(x - max) = 1 / Σ, so logsumexp(x) = max(x) - log(max(p)); max(p)
 *    is at least 1/V, so the log never sees an underflowed 0 (numerically stable, like the
 *    plain path's log-sum-exp).
 *
 * 3. The head and the loss in blocks of rows, recomputed in the backward pass. The (K, V)
 *    logits, their probabilities and their gradient are each ~90 MB for one batch of the book's
 *    data, and holding all three at once set the peak memory of a step. `headCrossEntropy`
 *    takes the hidden states and the head's weight, and works through `HEAD_CHUNK_ROWS` rows at
 *    a time: forward, each block's logits -> softmax -> loss terms, then freed; backward, each
 *    block's logits and softmax again (one more (rows, C) @ (C, V) matmul: cheap next to the
 *    rest), its gradient, and its shares of dHidden and dWeight. Peak: one block, not K rows.
 */
import * as tf from "@tensorflow/tfjs";
import { DataError } from "../core/errors";
import type { GPTModel } from "../model/gpt";
import { XENT_GRAD_KERNEL } from "../engine/kernel-names";
import { nativeSoftmaxXent } from "../engine/native-ops";
import { calcLossBatch, KeptTargets, keptTargets, pickPerRow } from "./loss";


/** (softmax - onehot(labels)) * scale with plain tf ops, on any backend. probs (K, V), labels (K,). */
function xentGradOps(probs: tf.Tensor2D, labels: tf.Tensor, scale: tf.Scalar): tf.Tensor2D {
  return tf.tidy(() => {
    // int32, then cast: wasm's OneHot ignores a float32 dtype and writes int bits (tfjs 4.22)
    const onehot = tf.cast(tf.oneHot(labels, probs.shape[1]), "float32"); // (K,) -> (K, V)
    return tf.mul(tf.sub(probs, onehot), scale) as tf.Tensor2D; // (K, V)
  });
}

/**
 * Mean over rows of -log softmax(logits)[label]. logits (K, V) float32, labels: K ids in [0, V).
 * Differentiable in logits (see the file comment for the gradient). The labels are plain
 * numbers, not a tensor: the backward pass runs after the caller's tidy() has ended.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, labelIds: Int32Array): tf.Scalar {
  const k = logits.shape[0];
  if (labelIds.length !== k) {
    throw new DataError(`softmaxCrossEntropy: logits [${logits.shape}] need ${k} labels, got ${labelIds.length}`);
  }
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const probs = tf.softmax(x, -1) as tf.Tensor2D; // (K, V)
    save([probs]);
    const value = tf.tidy(() => tf.div(lossSum(x, probs, labelIds), k) as tf.Scalar);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => xentGrad(saved[0] as tf.Tensor2D, labelIds, tf.div(dy, k) as tf.Scalar));
    return { value, gradFunc };
  });
  return run(logits) as tf.Scalar;
}

/** acc + t with both freed (t itself when acc is null): one running sum alive across blocks, not one per block. */
function addFreeing(acc: tf.Tensor | null, t: tf.Tensor): tf.Tensor {
  if (acc === null) return t;
  const sum = tf.add(acc, t);
  tf.dispose([acc, t]);
  return sum;
}

/** Rows of the head and loss computed at once by `headCrossEntropy` ((128, 50257) float32 = 25 MB). */
export const HEAD_CHUNK_ROWS = 128;

/** Σ over rows of logsumexp(logits) - logits[label], from the logits and their softmax. (R, V) -> scalar */
function lossSum(logits: tf.Tensor2D, probs: tf.Tensor2D, labelIds: Int32Array): tf.Scalar {
  return tf.tidy(() => {
    const logSumExp = tf.sub(tf.max(logits, -1), tf.log(tf.max(probs, -1))); // (R,), see the file comment
    const picked = pickPerRow(logits, labelIds); // (R,) logit of each label
    return tf.sum(tf.sub(logSumExp, picked)) as tf.Scalar;
  });
}

/** (softmax - onehot(labels)) * scale, with the backend's one-pass kernel when it has one. (R, V) -> (R, V) */
function xentGrad(probs: tf.Tensor2D, labelIds: Int32Array, scale: tf.Scalar): tf.Tensor2D {
  return tf.tidy(() => {
    const labels = tf.tensor1d(labelIds, "int32"); // (R,)
    if (tf.getKernel(XENT_GRAD_KERNEL, tf.getBackend()) !== undefined) {
      return tf.engine().runKernel(XENT_GRAD_KERNEL, { probs, labels, scale }) as tf.Tensor2D;
    }
    return xentGradOps(probs, labels, scale);
  });
}

/**
 * A LoRA update on the head (lib/model/lora.ts): logits = hidden @ W + down @ up, where
 * down = (alpha/r) · hidden @ A (K, r) is computed by the caller (its gradient reaches A and the
 * hidden states through ordinary autodiff) and up = B (r, V). W is then frozen: no (C, V) gradient.
 */
export interface HeadLowRank {
  down: tf.Tensor2D;
  up: tf.Tensor2D;
}

/**
 * Mean over rows of -log softmax(hidden @ weight)[label], in blocks of `chunkRows` rows.
 * hidden (K, C), weight (C, V) -> scalar; differentiable in both (see the file comment, point 3).
 * With `lowRank` the logits are hidden @ weight + down @ up, differentiable in hidden, down and up,
 * and the weight is held fixed (LoRA's frozen head).
 */
export function headCrossEntropy(
  hidden: tf.Tensor2D,
  weight: tf.Tensor2D,
  labelIds: Int32Array,
  chunkRows = HEAD_CHUNK_ROWS,
  lowRank?: HeadLowRank,
): tf.Scalar {
  const k = hidden.shape[0];
  if (labelIds.length !== k) throw new DataError(`headCrossEntropy: hidden [${hidden.shape}] needs ${k} labels, got ${labelIds.length}`);
  const r = lowRank?.down.shape[1] ?? 0;
  const blocks: [number, number][] = [];
  for (let r0 = 0; r0 < k; r0 += chunkRows) blocks.push([r0, Math.min(k, r0 + chunkRows)]);
  const rowsOf = (t: tf.Tensor2D, [r0, r1]: [number, number]) => t.slice([r0, 0], [r1 - r0, t.shape[1]]);
  // one block's logits and probabilities: (R, C) @ (C, V) [+ (R, r) @ (r, V)] -> (R, V), twice
  const block = (h: tf.Tensor2D, w: tf.Tensor2D, lr: HeadLowRank | undefined, rows: [number, number]) => {
    let logits = tf.matMul(rowsOf(h, rows), w) as tf.Tensor2D; // (R, V)
    if (lr !== undefined) logits = tf.add(logits, tf.matMul(rowsOf(lr.down, rows), lr.up)); // + (R, r) @ (r, V)
    return { logits, probs: tf.softmax(logits, -1) as tf.Tensor2D };
  };
  const forward = (h: tf.Tensor2D, w: tf.Tensor2D, lr: HeadLowRank | undefined) =>
    tf.tidy(() => {
      let total = tf.scalar(0);
      for (const [r0, r1] of blocks) {
        const part = tf.tidy(() => {
          const { logits, probs } = block(h, w, lr, [r0, r1]);
          return lossSum(logits, probs, labelIds.subarray(r0, r1));
        });
        total = tf.add(total, part); // scalars: freed with this scope
      }
      return tf.div(total, k) as tf.Scalar;
    });
  // the gradients of every block: dHidden rows (and dDown rows) concatenated, dWeight (or dUp) summed
  const backward = (dy: tf.Tensor, h: tf.Tensor2D, w: tf.Tensor2D, lr: HeadLowRank | undefined) =>
    tf.tidy(() => {
      const scale = tf.div(dy, k) as tf.Scalar; // d(mean)/d(row loss) = 1/K
      const dHidden: tf.Tensor[] = [];
      const dDown: tf.Tensor[] = [];
      let dMatrix: tf.Tensor | null = null; // dWeight (C, V), or dUp (r, V) with a low-rank update
      for (const [r0, r1] of blocks) {
        const parts = tf.tidy(() => {
          const { probs } = block(h, w, lr, [r0, r1]);
          const g = xentGrad(probs, labelIds.subarray(r0, r1), scale); // (R, V)
          const dh = tf.matMul(g, w, false, true); // (R, V) @ (V, C) -> (R, C)
          if (lr === undefined) return [dh, tf.matMul(rowsOf(h, [r0, r1]), g, true, false)]; // (C, R) @ (R, V) -> (C, V)
          // (R, V) @ (V, r) -> (R, r), and (r, R) @ (R, V) -> (r, V)
          return [dh, tf.matMul(rowsOf(lr.down, [r0, r1]), g, true, false), tf.matMul(g, lr.up, false, true)];
        });
        dHidden.push(parts[0]);
        if (parts[2] !== undefined) dDown.push(parts[2]);
        dMatrix = addFreeing(dMatrix, parts[1]);
      }
      const dh = tf.concat(dHidden, 0);
      return lr === undefined ? [dh, dMatrix as tf.Tensor] : [dh, tf.concat(dDown, 0), dMatrix as tf.Tensor];
    });
  if (lowRank === undefined) {
    const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
      const [h, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
      save([h, w]);
      const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => backward(dy, saved[0] as tf.Tensor2D, saved[1] as tf.Tensor2D, undefined);
      return { value: forward(h, w, undefined), gradFunc };
    });
    return run(hidden, weight) as tf.Scalar;
  }
  if (lowRank.down.shape[0] !== k || lowRank.up.shape[0] !== r || lowRank.up.shape[1] !== weight.shape[1]) {
    throw new DataError(`headCrossEntropy: low-rank down [${lowRank.down.shape}] and up [${lowRank.up.shape}] do not fit hidden [${hidden.shape}] and weight [${weight.shape}]`);
  }
  // the frozen weight is not an input of the custom op: its (C, V) gradient is never made
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, down, up, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([h, down, up]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [hs, ds, us] = saved as tf.Tensor2D[];
      return backward(dy, hs, weight, { down: ds, up: us });
    };
    return { value: forward(h, weight, { down, up }), gradFunc };
  });
  return run(hidden, lowRank.down, lowRank.up) as tf.Scalar;
}

/**
 * `headCrossEntropy` for a loss that will be differentiated (a training step): each block's gradient is
 * worked out in the forward pass, while its logits and probabilities are at hand, instead of recomputing
 * them in the backward pass: one (R, C) @ (C, V) matmul and one V-wide softmax less per block. The gradient
 * is linear in the incoming dy (a scalar), so the forward pass keeps the shares for dy = K, dHidden (K, C)
 * and dWeight (C, V), and the backward pass scales them by dy / K. When nothing asks for the gradient
 * (an evaluation) that work is wasted: evaluations use `headCrossEntropy`. Tested equal to it.
 */
export function headCrossEntropyEager(hidden: tf.Tensor2D, weight: tf.Tensor2D, labelIds: Int32Array, chunkRows = HEAD_CHUNK_ROWS): tf.Scalar {
  const [k, c] = hidden.shape;
  if (labelIds.length !== k) throw new DataError(`headCrossEntropyEager: hidden [${hidden.shape}] needs ${k} labels, got ${labelIds.length}`);
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    const one = tf.scalar(1);
    let total: tf.Tensor = tf.scalar(0);
    // each block's (R, V) gradient of the logits; its logits and probabilities go as soon as it is made
    const gParts: tf.Tensor[] = [];
    for (let r0 = 0; r0 < k; r0 += chunkRows) {
      const r1 = Math.min(k, r0 + chunkRows);
      const [part, g] = tf.tidy(() => {
        const logits = tf.matMul(h.slice([r0, 0], [r1 - r0, c]), w) as tf.Tensor2D; // (R, C) @ (C, V) -> (R, V)
        // on the native engine, TensorFlow's own kernel: both in one pass over the logits
        const native = nativeSoftmaxXent(logits, tf.tensor1d(labelIds.subarray(r0, r1), "int32"));
        if (native !== null) return [tf.sum(native.loss), native.grad];
        const probs = tf.softmax(logits, -1) as tf.Tensor2D; // (R, V)
        return [lossSum(logits, probs, labelIds.subarray(r0, r1)), xentGrad(probs, labelIds.subarray(r0, r1), one)]; // (), (R, V): softmax - onehot, for dy = K
      });
      total = addFreeing(total, part);
      gParts.push(g);
    }
    // then dHidden and dWeight each in one matmul over every row: summing per-block (C, V) weight gradients
    // would hold three (C, V) tensors at once (the sum so far, the block's, the new sum), at the end of the
    // forward pass, when the activations are all still held
    const gAll = gParts.length === 1 ? gParts[0] : tf.concat(gParts, 0); // (K, V)
    if (gParts.length > 1) tf.dispose(gParts);
    const grads = [tf.matMul(gAll, w, false, true), tf.matMul(h, gAll, true, false)]; // (K, V) @ (V, C) -> (K, C); (C, K) @ (K, V) -> (C, V)
    tf.dispose([one, gAll]);
    save(grads);
    const value = tf.div(total, k) as tf.Scalar;
    total.dispose();
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => saved.map((g) => tf.mul(g, tf.div(dy, k))));
    return { value, gradFunc };
  });
  return run(hidden, weight) as tf.Scalar;
}

/**
 * `calcLossBatch` with the head over kept positions only, fused softmax cross-entropy, in blocks of rows.
 * With `training` (a step that takes the gradient) the head's gradient is worked out in the forward pass
 * (`headCrossEntropyEager`); evaluations recompute nothing and take no gradient (`headCrossEntropy`).
 */
export function calcLossBatchFused(model: GPTModel, inputs: tf.Tensor2D, targets: tf.Tensor2D, training = false, kept?: KeptTargets): tf.Scalar {
  if (kept !== undefined && kept.total !== targets.size) {
    throw new DataError(`calcLossBatchFused: the kept targets were read from ${kept.total} positions, the targets have ${targets.size}`);
  }
  // a head split into vocabulary blocks (a small-buffer GPU, lib/model/vocab-table.ts) has no one (C, V)
  // weight for the blocks of rows below: the plain loss computes the same number (the GPU path trains there)
  if (model.tables.split) return calcLossBatch(model, inputs, targets, training, kept);
  const { rows, ids } = kept ?? keptTargets(targets, model.cfg.vocabSize, "calcLossBatchFused");
  return tf.tidy(() => {
    const hidden = model.hidden(inputs, training); // (B, T, C) after the final norm
    const flat = hidden.reshape([-1, model.cfg.embDim]); // (N, C), N = B*T
    const kept = tf.gather(flat, tf.tensor1d(rows, "int32")) as tf.Tensor2D; // (K, C)
    const lora = model.headLoRA;
    // with LoRA on the head: logits = kept @ W + ((alpha/r) · kept @ A) @ B, W frozen
    const lowRank = lora === null ? undefined : { down: lora.down(kept), up: lora.B as tf.Tensor2D };
    // the head's gradient in the forward pass for a training step without LoRA (headCrossEntropyEager has no
    // low-rank term, and a frozen head takes no weight gradient)
    if (training && HEAD_GRAD.eager && lowRank === undefined) return headCrossEntropyEager(kept, model.headWeight as tf.Tensor2D, ids);
    return headCrossEntropy(kept, model.headWeight as tf.Tensor2D, ids, HEAD_CHUNK_ROWS, lowRank); // head and loss in blocks of rows
  });
}

/** Whether training steps take the head's gradient in the forward pass (`headCrossEntropyEager`); false: recompute it. */
export const HEAD_GRAD = { eager: process.env.COURSE_EAGER_HEAD_GRAD !== "0" };
