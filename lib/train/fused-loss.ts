/**
 * The same loss as `calcLossBatch` (lib/train/loss.ts), computed faster. The trainer uses it;
 * `maskedCrossEntropy` stays the readable definition, and test/fused-loss.test.ts checks the
 * two agree (loss and every gradient).
 *
 * Two changes, both exact in real arithmetic:
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
 */
import * as tf from "@tensorflow/tfjs";
import { DataError } from "../errors";
import type { GPTModel } from "../model/gpt";
import { IGNORE_INDEX } from "./loss";

/** Name of the backend kernel for the gradient; backends without it use plain tf ops. */
export const XENT_GRAD_KERNEL = "CourseSoftmaxXentGrad";

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
  const [k, v] = logits.shape;
  if (labelIds.length !== k) {
    throw new DataError(`softmaxCrossEntropy: logits [${logits.shape}] need ${k} labels, got ${labelIds.length}`);
  }
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [x, save] = args as [tf.Tensor2D, tf.GradSaveFunc];
    const probs = tf.softmax(x, -1); // (K, V)
    save([probs]);
    const value = tf.tidy(() => {
      // logsumexp(x) = max(x) - log(max(softmax(x))), per row
      const logSumExp = tf.sub(tf.max(x, -1), tf.log(tf.max(probs, -1))); // (K,)
      const flatIds = labelIds.map((id, row) => row * v + id); // (K,): row*V + label
      const picked = tf.gather(x.reshape([-1]), tf.tensor1d(flatIds, "int32")); // (K,) logit of each label
      return tf.mean(tf.sub(logSumExp, picked)) as tf.Scalar;
    });
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [p] = saved as [tf.Tensor2D];
      return tf.tidy(() => {
        const scale = tf.div(dy, k) as tf.Scalar; // d(mean)/d(row loss) = 1/K
        const labels = tf.tensor1d(labelIds, "int32"); // (K,)
        if (tf.getKernel(XENT_GRAD_KERNEL, tf.getBackend()) !== undefined) {
          return tf.engine().runKernel(XENT_GRAD_KERNEL, { probs: p, labels, scale }) as tf.Tensor;
        }
        return xentGradOps(p, labels, scale);
      });
    };
    return { value, gradFunc };
  });
  return run(logits) as tf.Scalar;
}

/** Flat positions and target ids of the kept targets; checks them like maskedCrossEntropy. */
export function keptTargets(targets: tf.Tensor2D, vocab: number): { rows: Int32Array; ids: Int32Array } {
  const t = targets.dataSync(); // input data: cheap to read, and the kept count sets the shapes
  const rows: number[] = [];
  const ids: number[] = [];
  for (let i = 0; i < t.length; i++) {
    const id = t[i];
    if (id === IGNORE_INDEX) continue;
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new DataError(`calcLossBatchFused: target ${id} at flat position ${i} is outside [0, ${vocab}) and is not IGNORE_INDEX (${IGNORE_INDEX})`);
    }
    rows.push(i);
    ids.push(id);
  }
  if (rows.length === 0) {
    throw new DataError(`calcLossBatchFused: all ${t.length} targets are IGNORE_INDEX (${IGNORE_INDEX}); there is no token to average over`);
  }
  return { rows: Int32Array.from(rows), ids: Int32Array.from(ids) };
}

/** `calcLossBatch` with the head over kept positions only and the fused softmax cross-entropy. */
export function calcLossBatchFused(model: GPTModel, inputs: tf.Tensor2D, targets: tf.Tensor2D, training = false): tf.Scalar {
  const { rows, ids } = keptTargets(targets, model.cfg.vocabSize);
  return tf.tidy(() => {
    const hidden = model.hidden(inputs, training); // (B, T, C) after the final norm
    const flat = hidden.reshape([-1, model.cfg.embDim]); // (N, C), N = B*T
    const kept = tf.gather(flat, tf.tensor1d(rows, "int32")); // (K, C)
    const logits = model.head(kept) as tf.Tensor2D; // (K, C) -> (K, V)
    return softmaxCrossEntropy(logits, ids);
  });
}
