/**
 * `Identity` on wasm without a copy.
 *
 * tfjs runs Identity wherever a tensor is passed on unchanged: reading a variable, wrapping a
 * custom gradient's output, some gradients. The wasm backend's kernel copies the data every
 * time; the cpu backend's shares it and counts one more reference, which is safe because
 * tensor data is never written in place (a variable's `assign` swaps in new data). On a
 * training step of the tiny model that copy is ~87 MB per (rows, 50,257) logits tensor, four
 * times, plus 25 MB for each read of an embedding table: time, and peak memory in a heap that
 * never shrinks. This kernel shares, as cpu does. The original is kept, so the patch comes off again.
 */
import * as tf from "@tensorflow/tfjs";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
interface RefCountingBackend {
  incRef(dataId: tf.DataId): void;
}

let original: tf.KernelConfig | null = null;

function sharedIdentity(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as { x: tf.TensorInfo };
  if (x.dtype === "string") return (original as tf.KernelConfig).kernelFunc(args as never) as tf.TensorInfo;
  (args.backend as RefCountingBackend).incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Replace wasm's copying Identity with the sharing one. Idempotent. */
export function installSharedIdentity(): void {
  if (original !== null) return;
  const current = tf.getKernel("Identity", "wasm");
  if (current === undefined) throw new Error("wasm Identity kernel missing: load @tensorflow/tfjs-backend-wasm first");
  original = current;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel({ ...current, kernelFunc: sharedIdentity as tf.KernelFunc });
}

/** Put wasm's own Identity back. Idempotent. */
export function removeSharedIdentity(): void {
  if (original === null) return;
  tf.unregisterKernel("Identity", "wasm");
  tf.registerKernel(original);
  original = null;
}
