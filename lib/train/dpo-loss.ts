/**
 * The DPO loss (ch07/04, section 4; Rafailov et al. 2023, "Direct Preference Optimization: Your
 * Language Model is Secretly a Reward Model", eq. 7), written out as the book writes it.
 *
 * For a prompt x with a preferred response y_w and a dispreferred one y_l, the policy π (the model
 * being tuned) and the frozen reference π_ref (the model before tuning):
 *
 *   loss = -log σ( β · [ (log π(y_w|x) − log π(y_l|x)) − (log π_ref(y_w|x) − log π_ref(y_l|x)) ] )
 *
 * The loss falls as the policy raises the chosen response's probability relative to the reference
 * more than the rejected one's. At the start π = π_ref, the bracket is 0 and the loss is ln 2.
 * The "rewards" the book tracks are the two halves of the bracket, without β:
 * chosen reward = log π(y_w|x) − log π_ref(y_w|x), rejected reward likewise; their difference is the
 * reward margin.
 *
 * "log π(y|x)" is here, as in the book, the MEAN log-probability per response token (`computeLogProbs`),
 * not the sum over tokens the paper writes: a long response does not count for more than a short one.
 *
 * `computeLogProbs` is the book's `compute_logprobs` on full (B, T, V) logits, the readable definition;
 * the trainer computes the same numbers from the model without the logits of unscored positions
 * (dpo-logprobs.ts), and a test checks that they agree.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError, DataError } from "../core/errors";

/**
 * The book's `compute_logprobs`: for each sequence, the mean log-probability of its tokens under the
 * model that produced `logits`, over the positions `selectionMask` marks (all positions when omitted).
 * logits (B, T, V), labels (B, T) int32 token ids, selectionMask (B, T) bool or 0/1 -> (B,).
 * The model's prediction at position t is for the token at t + 1: labels and mask drop their first
 * position, logits their last.
 */
export function computeLogProbs(logits: tf.Tensor3D, labels: tf.Tensor2D, selectionMask?: tf.Tensor2D): tf.Tensor1D {
  const [b, t, v] = logits.shape;
  if (labels.shape[0] !== b || labels.shape[1] !== t || (selectionMask && (selectionMask.shape[0] !== b || selectionMask.shape[1] !== t))) {
    throw new DataError(`computeLogProbs: logits [${logits.shape}], labels [${labels.shape}] and mask [${selectionMask?.shape ?? "-"}] do not fit (B, T, V), (B, T)`);
  }
  return tf.tidy(() => {
    const next = labels.slice([0, 1], [b, t - 1]); // (B, T-1): the token each position predicts
    const logProbs = tf.logSoftmax(logits.slice([0, 0, 0], [b, t - 1, v]), -1); // (B, T-1, V)
    // the log-probability of each actual next token, the book's torch.gather (as a one-hot: no host read, any engine)
    const onehot = tf.cast(tf.oneHot(next, v), "float32"); // (B, T-1) -> (B, T-1, V)
    const selected = tf.sum(tf.mul(logProbs, onehot), -1); // (B, T-1)
    if (selectionMask === undefined) return tf.mean(selected, -1) as tf.Tensor1D; // (B,)
    const mask = tf.cast(selectionMask.slice([0, 1], [b, t - 1]), "float32"); // (B, T-1)
    // the mean over the response tokens only: padding (and the prompt) count for nothing
    return tf.div(tf.sum(tf.mul(selected, mask), -1), tf.sum(mask, -1)) as tf.Tensor1D; // (B,)
  });
}

/** The loss and the two mean rewards of a batch (the book's `compute_dpo_loss` returns). A type, not an interface: tf.tidy can return it. */
export type DPOLossParts = {
  /** mean over the batch of -log σ(β · logits) */
  loss: tf.Scalar;
  /** mean of log π(y_w|x) − log π_ref(y_w|x) */
  chosenRewards: tf.Scalar;
  /** mean of log π(y_l|x) − log π_ref(y_l|x) */
  rejectedRewards: tf.Scalar;
};

/** Throws a ConfigError unless β is a finite number > 0. */
export function validateBeta(beta: number): void {
  if (!Number.isFinite(beta) || beta <= 0) throw new ConfigError(`DPO: beta must be a number > 0 (the book: 0.1 to 0.5), got ${beta}`);
}

/**
 * The book's `compute_dpo_loss`: the DPO loss of a batch from the four (B,) vectors of mean
 * log-probabilities. Only the policy's two should carry gradients: the reference is frozen.
 */
export function dpoLoss(
  policyChosen: tf.Tensor1D,
  policyRejected: tf.Tensor1D,
  referenceChosen: tf.Tensor1D,
  referenceRejected: tf.Tensor1D,
  beta: number,
): DPOLossParts {
  validateBeta(beta);
  return tf.tidy(() => {
    const policyLogRatios = tf.sub(policyChosen, policyRejected); // log π(y_w|x)/π(y_l|x), (B,)
    const referenceLogRatios = tf.sub(referenceChosen, referenceRejected); // the same for π_ref
    const logits = tf.sub(policyLogRatios, referenceLogRatios); // (B,)
    // -log σ(z) = softplus(-z), the book's -F.logsigmoid(beta * logits). (tf.logSigmoid's gradient reads its input
    // after a tidy() has freed it, tfjs 4.22; softplus is one kernel with its own gradient.)
    const losses = tf.softplus(tf.neg(tf.mul(logits, beta))); // (B,)
    return {
      loss: tf.mean(losses) as tf.Scalar,
      chosenRewards: tf.mean(tf.sub(policyChosen, referenceChosen)) as tf.Scalar,
      rejectedRewards: tf.mean(tf.sub(policyRejected, referenceRejected)) as tf.Scalar,
    };
  });
}
