/**
 * The reference model of DPO: the model before tuning, frozen, against which the policy's log-probabilities
 * are measured. Two ways to have one:
 *
 * - a second model with the starting weights, as the book does (`reference_model`, loaded from the same
 *   file as the policy). It is frozen here: its variables are marked untrainable, and it only ever runs
 *   outside the gradient tape;
 * - with LoRA: the policy itself with its adapter switched off (lib/model/lora-switch.ts). LoRA trains
 *   A and B only, so the frozen base weights ARE the starting model, and the reference costs no second
 *   copy of the weights: for gpt2-medium, 1.6 GB (406M float32 values) less.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import type { GPTConfig } from "../model/config";
import type { GPTModel } from "../model/gpt";
import { withAdapterOff } from "../model/lora-switch";
import { responseLogProbs, ScoredTokens } from "./dpo-logprobs";

/** A separate frozen model, or "adapter-off": the LoRA policy with its adapter switched off. */
export type DPOReference = GPTModel | "adapter-off";

/** The fields that make two GPT models compute on the same tokens with the same shapes of weights. */
const SHAPE_FIELDS = ["vocabSize", "contextLength", "embDim", "nHeads", "nLayers", "qkvBias"] as const;

/** "vocabSize 50257, contextLength 1024, …": a config's shape for a message. */
export function describeShape(cfg: GPTConfig): string {
  return SHAPE_FIELDS.map((f) => `${f} ${cfg[f]}`).join(", ");
}

/**
 * The reference for `policy`: `reference` when given (checked to be a separate model of the same
 * architecture, and frozen), else the policy with its LoRA adapter off. Without either there is
 * nothing to compare with: a ConfigError says so.
 */
export function referenceFor(policy: GPTModel, reference?: GPTModel): DPOReference {
  if (reference === undefined) {
    if (policy.lora !== null) return "adapter-off";
    throw new ConfigError(
      "DPO needs a reference model: a separate copy of the starting weights, or a LoRA adapter on the policy (the reference is then the policy with its adapter off)",
    );
  }
  if (reference === policy) throw new ConfigError("DPO: the reference must be a separate copy of the starting weights, not the policy itself");
  const differs = SHAPE_FIELDS.filter((f) => reference.cfg[f] !== policy.cfg[f]);
  if (differs.length > 0) {
    throw new ConfigError(
      `the reference model (${describeShape(reference.cfg)}) is not the policy's architecture (${describeShape(policy.cfg)}): ` +
        `${differs.join(", ")} differ`,
    );
  }
  for (const v of reference.params.values()) v.trainable = false; // frozen: no gradient, no optimizer state
  return reference;
}

/** What a reference is, in words, for a log line. */
export function describeReference(reference: DPOReference): string {
  return reference === "adapter-off" ? "the policy with its LoRA adapter switched off (no second copy of the weights)" : "a separate frozen copy of the starting weights";
}

/** The reference's mean log-probabilities of the scored tokens, ids (S, T) -> (S,): eval mode, never differentiated. */
export function referenceLogProbs(reference: DPOReference, policy: GPTModel, ids: tf.Tensor2D, scored: ScoredTokens): tf.Tensor1D {
  if (reference === "adapter-off") return withAdapterOff(policy, () => responseLogProbs(policy, ids, scored, false));
  return responseLogProbs(reference, ids, scored, false);
}
