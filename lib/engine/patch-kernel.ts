/**
 * Replacing a TensorFlow.js kernel, and putting it back: the one way every engine patch does it.
 *
 * tfjs keeps one registry of kernels, keyed by (kernel name, backend name). A patch either wraps
 * the kernel a backend has (`patchKernel`: the wrapper gets the original to fall back on) or adds
 * one it lacks (`addKernel`). Both return a `restore` that puts back exactly what was there, the
 * same config object, so `tf.getKernel` answers as it did before and the patch is one flag away.
 * `KernelPatch` holds one such patch for a switch that may be flipped many times in a process.
 */
import * as tf from "@tensorflow/tfjs";

/** What tfjs passes a kernelFunc; `backend` is left open, each kernel says which it expects. */
export type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
export type KernelImpl = (args: KernelArgs) => tf.TensorInfo | tf.TensorInfo[];
/** Undoes one patch; a second call does nothing. */
export type Restore = () => void;

/**
 * Put `wrap(original)` in place of `kernelName`'s kernelFunc on `backendName`. The original
 * config's other fields stay: wasm's `setupFunc` binds the C++ function when the backend starts.
 */
export function patchKernel(kernelName: string, backendName: string, wrap: (original: KernelImpl) => KernelImpl): Restore {
  const original = tf.getKernel(kernelName, backendName);
  if (original === undefined) throw new Error(`${backendName} kernel ${kernelName} missing: load its backend first`);
  const patched: tf.KernelConfig = { ...original, kernelFunc: wrap(original.kernelFunc as KernelImpl) as tf.KernelFunc };
  tf.unregisterKernel(kernelName, backendName);
  tf.registerKernel(patched);
  return restoreTo(patched, original);
}

/** Register `impl` as `kernelName` on `backendName`; null (and nothing changes) when the backend has one. */
export function addKernel(kernelName: string, backendName: string, impl: KernelImpl): Restore | null {
  if (tf.getKernel(kernelName, backendName) !== undefined) return null;
  const added: tf.KernelConfig = { kernelName, backendName, kernelFunc: impl as tf.KernelFunc };
  tf.registerKernel(added);
  return restoreTo(added, undefined);
}

function restoreTo(mine: tf.KernelConfig, original: tf.KernelConfig | undefined): Restore {
  let done = false;
  return () => {
    if (done) return;
    const { kernelName, backendName } = mine;
    // Patches stack (the BLAS matmul wraps the transposed-matmul wrapper): taking out one that
    // another wraps would put back a kernel with the other's wrapper lost, or lose ours under it.
    if (tf.getKernel(kernelName, backendName) !== mine) {
      throw new Error(`cannot restore ${backendName} kernel ${kernelName}: a later patch replaced it; restore that one first`);
    }
    tf.unregisterKernel(kernelName, backendName);
    if (original !== undefined) tf.registerKernel(original);
    done = true;
  };
}

/** One patch behind an on/off switch; both directions are idempotent. */
export class KernelPatch {
  private restore: Restore | null = null;

  /** `apply` installs the patch and returns its restore, or null when there is nothing to do. */
  constructor(private readonly apply: () => Restore | null) {}

  get installed(): boolean {
    return this.restore !== null;
  }

  /** Returns whether this call installed it. */
  install(): boolean {
    if (this.restore !== null) return false;
    this.restore = this.apply();
    return this.restore !== null;
  }

  /** Returns whether this call took it out. */
  remove(): boolean {
    if (this.restore === null) return false;
    this.restore();
    this.restore = null;
    return true;
  }
}
