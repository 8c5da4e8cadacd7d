/**
 * Will a DPO run fit the engine's memory? DPO holds everything fine-tuning holds (lib/engine/memory.ts:
 * weights, gradients, AdamW's moments; or, with LoRA, the frozen weights and the small adapter's) plus
 * the frozen reference: a second copy of the weights, or nothing more when the reference is the LoRA
 * policy with its adapter off. Asked before the first step, so that wasm's 4 GiB heap is not found out
 * in the middle of one. The native engines have no such ceiling.
 */
import * as tf from "@tensorflow/tfjs";
import { frozenWeightCopies, trainingBytes, WASM_TRAIN_BUDGET_BYTES } from "../engine/memory";
import type { GPTModel } from "../model/gpt";
import type { DPOReference } from "./dpo-reference";

/**
 * Bytes a DPO run keeps before activations: the policy's training state and the reference's weights
 * (`blas`: whether the BLAS matmul replaces XNNPACK's, which keeps a packed copy of every weight it multiplies; default: as installed now).
 */
export function dpoBytes(policyParams: number, loraParams: number | undefined, referenceParams: number, blas?: boolean): number {
  return trainingBytes(policyParams, loraParams, blas) + 4 * frozenWeightCopies(blas) * referenceParams;
}

/** Why `policy` cannot be tuned against `reference` on `backend` (default: the current one), or undefined when it can. */
export function dpoMemoryProblem(policy: GPTModel, reference: DPOReference, backend = tf.getBackend(), blas?: boolean): string | undefined {
  const refParams = reference === "adapter-off" ? 0 : reference.numParams();
  const bytes = dpoBytes(policy.numParams(), policy.lora?.numParams(), refParams, blas);
  if (backend !== "wasm" || bytes <= WASM_TRAIN_BUDGET_BYTES) return undefined;
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  const what = policy.lora ? "the frozen weights, the LoRA adapter's training state" : "the policy's weights, gradients and AdamW state";
  // LoRA with the adapter-off reference: the weights once, and an adapter of ~2% of them
  const loraFits = policy.lora === null && dpoBytes(policy.numParams(), 0.02 * policy.numParams(), 0, blas) <= WASM_TRAIN_BUDGET_BYTES;
  return (
    `DPO on ${(policy.numParams() / 1e6).toFixed(0)}M parameters needs ~${gib(bytes)} GiB for ${what}` +
    `${refParams > 0 ? " and the reference model's weights" : ""} before activations, past what the wasm engine's 4 GiB heap can hold: ` +
    (loraFits ? "use LoRA DPO instead (--lora-rank 16: the reference is the policy with its adapter off, no second copy), or " : "") +
    "install @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node"
  );
}
