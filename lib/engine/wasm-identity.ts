/**
 * `Identity` on wasm without a copy.
 *
 * tfjs runs Identity wherever a tensor is passed on unchanged: reading a variable, wrapping a
 * custom gradient's output, some gradients. The wasm backend's kernel copies the data every
 * time; the cpu backend's shares it and counts one more reference, which is safe because
 * tensor data is never written in place (a variable's `assign` swaps in new data). On a
 * training step of the tiny model that copy is ~87 MB per (rows, 50,257) logits tensor, four
 * times, plus 25 MB for each read of an embedding table: time, and peak memory in a heap that
 * never shrinks. This kernel shares, as cpu does. A speed patch: it comes off again (patch-kernel.ts).
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelImpl, KernelPatch, patchKernel } from "./patch-kernel";
import type { WasmBackendLike } from "./wasm-guard";

function sharedIdentity(original: KernelImpl, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === "string") return original(args);
  (args.backend as WasmBackendLike).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

const patch = new KernelPatch(() => patchKernel("Identity", "wasm", (original) => (args) => sharedIdentity(original, args)));

/** Replace wasm's copying Identity with the sharing one. Idempotent. */
export function installSharedIdentity(): void {
  patch.install();
}

/** Put wasm's own Identity back. Idempotent. */
export function removeSharedIdentity(): void {
  patch.remove();
}
