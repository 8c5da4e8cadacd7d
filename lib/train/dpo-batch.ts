/**
 * The DPO loss of a batch and of a loader, the book's `compute_dpo_loss_batch` and
 * `compute_dpo_loss_loader` (ch07/04, section 4), on the library's pieces: the preference batch
 * (lib/data/preference-collate.ts), the log-probabilities (dpo-logprobs.ts), the reference
 * (dpo-reference.ts) and the loss (dpo-loss.ts).
 *
 * The book runs the policy twice (chosen, then rejected) and the reference twice. The collate function
 * pads chosen and rejected to one common length, so here each model runs once on the (2B, T) batch of
 * both, chosen rows first: the same numbers, half the passes.
 */
import * as tf from "@tensorflow/tfjs";
import type { PreferenceBatch } from "../data/preference-collate";
import type { GPTModel } from "../model/gpt";
import { dpoLoss, DPOLossParts } from "./dpo-loss";
import { responseLogProbs, ScoredTokens, scoredTokens } from "./dpo-logprobs";
import { DPOReference, referenceLogProbs } from "./dpo-reference";

/** A batch ready for the models: the (2B, T) ids tensor (chosen rows, then rejected) and its scored tokens. */
export interface DPOInputs {
  /** rows per response kind (B) */
  batchSize: number;
  /** (2B, T) int32; the caller disposes it */
  ids: tf.Tensor2D;
  scored: ScoredTokens;
}

/** The batch's chosen and rejected rows as one (2B, T) tensor, and the tokens its masks select. */
export function dpoInputs(batch: PreferenceBatch, vocabSize: number): DPOInputs {
  const rows = [...batch.chosen, ...batch.rejected];
  return {
    batchSize: batch.chosen.length,
    ids: tf.tensor2d(rows, undefined, "int32"), // (2B, T)
    scored: scoredTokens(rows, [...batch.chosenMask, ...batch.rejectedMask], vocabSize),
  };
}

/** (2B,) -> the chosen half and the rejected half, (B,) each. */
function halves(logProbs: tf.Tensor1D, b: number): [tf.Tensor1D, tf.Tensor1D] {
  return [logProbs.slice(0, b), logProbs.slice(b, b)];
}

/**
 * The DPO loss of one batch, given the reference's log-probabilities (S,) already computed (so that a
 * training step computes them outside the gradient tape): only the policy runs here.
 */
export function dpoLossFromReference(policy: GPTModel, inputs: DPOInputs, reference: tf.Tensor1D, beta: number, training = false): DPOLossParts {
  return tf.tidy(() => {
    const [policyChosen, policyRejected] = halves(responseLogProbs(policy, inputs.ids, inputs.scored, training), inputs.batchSize);
    const [refChosen, refRejected] = halves(reference, inputs.batchSize);
    return dpoLoss(policyChosen, policyRejected, refChosen, refRejected, beta);
  });
}

/** The book's `compute_dpo_loss_batch`: loss, chosen and rejected rewards of one batch (tensors the caller disposes). */
export function dpoLossBatch(policy: GPTModel, reference: DPOReference, batch: PreferenceBatch, beta: number): DPOLossParts {
  const inputs = dpoInputs(batch, policy.cfg.vocabSize);
  try {
    return tf.tidy(() => dpoLossFromReference(policy, inputs, referenceLogProbs(reference, policy, inputs.ids, inputs.scored), beta));
  } finally {
    inputs.ids.dispose();
  }
}

/** The means the book's `compute_dpo_loss_loader` returns. */
export interface DPOLoaderResult {
  loss: number;
  chosenReward: number;
  rejectedReward: number;
}

/**
 * The book's `compute_dpo_loss_loader`: the mean over batches of each batch's loss and mean rewards,
 * over the first `numBatches` batches (all when omitted). No batch at all gives NaNs, as the book's
 * `float("nan")`. Values are read with `await data()`, which works on every engine.
 */
export async function dpoLossLoader(
  batches: Iterable<PreferenceBatch>,
  policy: GPTModel,
  reference: DPOReference,
  beta: number,
  numBatches?: number,
): Promise<DPOLoaderResult> {
  const total = { loss: 0, chosenReward: 0, rejectedReward: 0 };
  let count = 0;
  if (numBatches === undefined || numBatches > 0) {
    for (const batch of batches) {
      const parts = dpoLossBatch(policy, reference, batch, beta);
      try {
        total.loss += (await parts.loss.data())[0];
        total.chosenReward += (await parts.chosenRewards.data())[0];
        total.rejectedReward += (await parts.rejectedRewards.data())[0];
      } finally {
        tf.dispose([parts.loss, parts.chosenRewards, parts.rejectedRewards]);
      }
      count++;
      if (numBatches !== undefined && count >= numBatches) break; // do not ask a generator for one batch more
    }
  }
  return { loss: total.loss / count, chosenReward: total.chosenReward / count, rejectedReward: total.rejectedReward / count };
}
