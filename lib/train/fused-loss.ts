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
import { KeptTargets, keptTargets, pickPerRow } from "./loss";


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
 * Mean over rows of -log softmax(hidden @ weight)[label], in blocks of `chunkRows` rows.
 * hidden (K, C), weight (C, V) -> scalar; differentiable in both (see the file comment, point 3).
 */
export function headCrossEntropy(hidden: tf.Tensor2D, weight: tf.Tensor2D, labelIds: Int32Array, chunkRows = HEAD_CHUNK_ROWS): tf.Scalar {
  const [k, c] = hidden.shape;
  if (labelIds.length !== k) throw new DataError(`headCrossEntropy: hidden [${hidden.shape}] needs ${k} labels, got ${labelIds.length}`);
  const blocks: [number, number][] = [];
  for (let r0 = 0; r0 < k; r0 += chunkRows) blocks.push([r0, Math.min(k, r0 + chunkRows)]);
  // one block's logits and probabilities: (R, C) @ (C, V) -> (R, V), twice
  const block = (h: tf.Tensor2D, w: tf.Tensor2D, [r0, r1]: [number, number]) => {
    const logits = tf.matMul(h.slice([r0, 0], [r1 - r0, c]), w) as tf.Tensor2D; // (R, V)
    return { logits, probs: tf.softmax(logits, -1) as tf.Tensor2D };
  };
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [h, w, save] = args as [tf.Tensor2D, tf.Tensor2D, tf.GradSaveFunc];
    save([h, w]);
    const value = tf.tidy(() => {
      let total = tf.scalar(0);
      for (const [r0, r1] of blocks) {
        const part = tf.tidy(() => {
          const { logits, probs } = block(h, w, [r0, r1]);
          return lossSum(logits, probs, labelIds.subarray(r0, r1));
        });
        total = tf.add(total, part); // scalars: freed with this scope
      }
      return tf.div(total, k) as tf.Scalar;
    });
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [hs, ws] = saved as [tf.Tensor2D, tf.Tensor2D];
      return tf.tidy(() => {
        const scale = tf.div(dy, k) as tf.Scalar; // d(mean)/d(row loss) = 1/K
        const dHidden: tf.Tensor[] = [];
        let dWeight: tf.Tensor | null = null;
        for (const [r0, r1] of blocks) {
          const [dh, dw] = tf.tidy(() => {
            const { probs } = block(hs, ws, [r0, r1]);
            const g = xentGrad(probs, labelIds.subarray(r0, r1), scale); // (R, V)
            return [tf.matMul(g, ws, false, true), tf.matMul(hs.slice([r0, 0], [r1 - r0, c]), g, true, false)]; // (R, C), (C, V)
          });
          dHidden.push(dh);
          if (dWeight === null) dWeight = dw;
          else {
            const sum: tf.Tensor = tf.add(dWeight, dw);
            tf.dispose([dWeight, dw]); // keep one (C, V) sum alive, not one per block
            dWeight = sum;
          }
        }
        return [tf.concat(dHidden, 0), dWeight as tf.Tensor];
      });
    };
    return { value, gradFunc };
  });
  return run(hidden, weight) as tf.Scalar;
}

/** `calcLossBatch` with the head over kept positions only, fused softmax cross-entropy, in blocks of rows. */
export function calcLossBatchFused(model: GPTModel, inputs: tf.Tensor2D, targets: tf.Tensor2D, training = false, kept?: KeptTargets): tf.Scalar {
  if (kept !== undefined && kept.total !== targets.size) {
    throw new DataError(`calcLossBatchFused: the kept targets were read from ${kept.total} positions, the targets have ${targets.size}`);
  }
  const { rows, ids } = kept ?? keptTargets(targets, model.cfg.vocabSize, "calcLossBatchFused");
  return tf.tidy(() => {
    const hidden = model.hidden(inputs, training); // (B, T, C) after the final norm
    const flat = hidden.reshape([-1, model.cfg.embDim]); // (N, C), N = B*T
    const kept = tf.gather(flat, tf.tensor1d(rows, "int32")) as tf.Tensor2D; // (K, C)
    return headCrossEntropy(kept, model.headWeight as tf.Tensor2D, ids); // head and loss in blocks of rows
  });
}
