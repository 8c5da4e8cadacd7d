/**
 * Will a training run fit the engine's memory? Asked before the first step, so that a model
 * too large for the engine stops with a clear message instead of running out of memory (or,
 * on the threaded wasm build, hanging) somewhere inside a step.
 *
 * wasm is 32-bit: its heap stops at 4 GiB. Training holds about five float32 copies of the
 * weights there (the weights, XNNPACK's packed copies of them, the gradients, AdamW's m and v)
 * before any activation, so we keep those under 3 GiB. gpt2-small with its own output head (163M
 * parameters) needs ~3.0 GiB for them and ran out of memory here; gpt2-medium (406M) needs ~7.6.
 * With the BLAS matmul (blas-matmul.ts) XNNPACK packs no copies, but gpt2-small still filled the
 * heap (4.2 GB resident) before its first step finished, so the budget stays as it is.
 * The native engines (tfjs-node, tfjs-node-gpu) and the cpu backend have no such ceiling.
 */
import * as tf from "@tensorflow/tfjs";

export const WASM_TRAIN_BUDGET_BYTES = 3 * 2 ** 30;
export const WEIGHT_COPIES_IN_TRAINING = 5;

/** Bytes that training keeps per model, before activations. */
export function trainingBytes(numParams: number): number {
  return WEIGHT_COPIES_IN_TRAINING * 4 * numParams;
}

/** Why a model of `numParams` cannot train on `backend` (default: the current one), or undefined when it can. */
export function trainingMemoryProblem(numParams: number, backend = tf.getBackend()): string | undefined {
  const bytes = trainingBytes(numParams);
  if (backend !== "wasm" || bytes <= WASM_TRAIN_BUDGET_BYTES) return undefined;
  return (
    `training ${(numParams / 1e6).toFixed(0)}M parameters needs ~${(bytes / 2 ** 30).toFixed(1)} GiB for weights, ` +
    `gradients and AdamW state before activations, past what the wasm engine's 4 GiB heap can hold: ` +
    `install @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, or train a smaller model (--model tiny)`
  );
}
