/**
 * The gradient of the fused softmax cross-entropy (lib/train/fused-loss.ts) as one wasm kernel.
 *
 *   out[k, j] = (probs[k, j] - (j == labels[k] ? 1 : 0)) * scale
 *
 * With tf ops that is a V-wide one-hot, a subtraction and a multiplication, three passes over
 * (K, V) floats with a (K, V) temporary; here it is one pass in JavaScript over the wasm heap.
 * Backends without this kernel use the tf ops (same numbers).
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelPatch, addKernel } from "./patch-kernel";
import type { WasmBackendLike } from "./wasm-guard";
import { XENT_GRAD_KERNEL } from "./kernel-names";

function softmaxXentGrad(args: KernelArgs): tf.TensorInfo {
  const backend = args.backend as WasmBackendLike;
  const { probs, labels, scale } = args.inputs as { probs: tf.TensorInfo; labels: tf.TensorInfo; scale: tf.TensorInfo };
  const [k, v] = probs.shape; // (K, V)
  const out = backend.makeOutput([k, v], "float32");
  // heap views after makeOutput (allocation may move the heap)
  const p = backend.typedArrayFromHeap(probs) as Float32Array;
  const ids = backend.typedArrayFromHeap(labels) as Int32Array;
  const s = (backend.typedArrayFromHeap(scale) as Float32Array)[0];
  const o = backend.typedArrayFromHeap(out) as Float32Array;
  const n = k * v;
  for (let i = 0; i < n; i++) o[i] = p[i] * s;
  for (let row = 0; row < k; row++) o[row * v + ids[row]] -= s;
  return out;
}

const patch = new KernelPatch(() => addKernel(XENT_GRAD_KERNEL, "wasm", softmaxXentGrad));

/** Register the kernel under backend "wasm" (once). */
export function registerXentGradKernel(): void {
  patch.install();
}

/** Take it out again (the fused loss then uses tf ops). */
export function unregisterXentGradKernel(): void {
  patch.remove();
}
