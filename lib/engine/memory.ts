/**
 * Will a training run fit the engine's memory? Asked before the first step, so that a model
 * too large for the engine stops with a clear message instead of running out of memory (or,
 * on the threaded wasm build, hanging) somewhere inside a step.
 *
 * wasm is 32-bit: its heap stops at 4 GiB. Full fine-tuning holds about five float32 copies of
 * the weights there (the weights, XNNPACK's packed copies of them, the gradients, AdamW's m and v)
 * before any activation, so we keep those under 3 GiB. gpt2-small with its own output head (163M
 * parameters) needs ~3.0 GiB for them and ran out of memory here; gpt2-medium (406M) needs ~7.6.
 * With the BLAS matmul (blas-matmul.ts) XNNPACK packs no copies, but gpt2-small still filled the
 * heap (4.2 GB resident) before its first step finished, so the budget stays as it is.
 *
 * LoRA (lib/model/lora.ts) freezes the weights: they get no gradients and no AdamW moments, so
 * they count once (twice where XNNPACK multiplies and keeps a packed copy of each, i.e. without the
 * BLAS matmul), and only the small adapter counts five times.
 * The native engines (tfjs-node, tfjs-node-gpu) and the cpu backend have no such ceiling.
 */
import * as tf from "@tensorflow/tfjs";
import { blasMatMulInstalled } from "./blas-matmul";

export const WASM_TRAIN_BUDGET_BYTES = 3 * 2 ** 30;
export const WEIGHT_COPIES_IN_TRAINING = 5;
/** A frozen weight's copies: itself, and XNNPACK's packed copy unless the BLAS matmul runs instead. */
export const frozenWeightCopies = (blas = blasMatMulInstalled()): number => (blas ? 1 : 2);

/**
 * Bytes that training keeps before activations: full fine-tuning, or LoRA with `loraParams`
 * trainable values (`blas`: whether the BLAS matmul replaces XNNPACK's; default: as installed now).
 */
export function trainingBytes(numParams: number, loraParams?: number, blas?: boolean): number {
  if (loraParams === undefined) return WEIGHT_COPIES_IN_TRAINING * 4 * numParams;
  return 4 * (frozenWeightCopies(blas) * numParams + WEIGHT_COPIES_IN_TRAINING * loraParams);
}

/**
 * Why a model of `numParams` cannot train on `backend` (default: the current one), or undefined when
 * it can. `loraParams`: the run trains a LoRA adapter of that many values and freezes the model.
 */
export function trainingMemoryProblem(numParams: number, backend = tf.getBackend(), loraParams?: number, blas?: boolean): string | undefined {
  const bytes = trainingBytes(numParams, loraParams, blas);
  if (backend !== "wasm" || bytes <= WASM_TRAIN_BUDGET_BYTES) return undefined;
  const gib = (b: number) => (b / 2 ** 30).toFixed(1);
  const what = loraParams === undefined ? "weights, gradients and AdamW state" : "frozen weights and the LoRA adapter's gradients and AdamW state";
  // LoRA leaves little more than the frozen weights (the adapter is ~2% of a GPT-2's values)
  const lora = loraParams === undefined && trainingBytes(numParams, 0.02 * numParams, blas) <= WASM_TRAIN_BUDGET_BYTES;
  return (
    `training ${(numParams / 1e6).toFixed(0)}M parameters needs ~${gib(bytes)} GiB for ${what} before activations, ` +
    `past what the wasm engine's 4 GiB heap can hold: ` +
    (lora ? `fine-tune with LoRA instead (--lora-rank 16: frozen weights need no gradients or AdamW state), or ` : "") +
    `install @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, or train a smaller model (--model tiny)`
  );
}

/** The wasm module's heap in bytes (it only ever grows, so its size is the peak); undefined on other engines. */
export function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.buffer.byteLength;
}

let gc: (() => void) | null | undefined;

/**
 * Run V8's garbage collector now, when it can be reached (`--expose-gc`, which this asks V8 for at run time);
 * returns whether it ran.
 *
 * Why: on the native engine a tensor made from JavaScript values (a model's random initial weights, a
 * checkpoint's tensors) lives in a JavaScript ArrayBuffer that libtensorflow wraps without copying. Once the
 * optimizer replaces such a weight, the buffer is garbage, but V8 sees no pressure on its own heap to collect
 * it (the pressure is in libtensorflow's), so gpt2-small's 622 MB of initial weights stayed resident beside the
 * trained ones for the rest of a run, and set the peak of every later step (issue 20).
 */
export function collectGarbage(): boolean {
  if (gc === undefined) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-var-requires
      (require("node:v8") as typeof import("node:v8")).setFlagsFromString("--expose-gc");
      gc = (require("node:vm") as typeof import("node:vm")).runInNewContext("gc") as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
  return gc !== null;
}
