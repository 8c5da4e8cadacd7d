/**
 * The most bytes of tensor data alive at once while `f` runs, counted by data buffer: a tensor and its clones
 * (TF.js's saved copies, reshapes) share one buffer and count once, unlike `tf.memory().numBytes` and
 * `tf.profile`'s peakBytes, which count every tensor object. Measured by wrapping the engine's bookkeeping
 * (tfjs-core 4.22's `trackTensor`, which meets each new buffer, and `removeDataId`, which frees one), and
 * relative to what was alive when `f` started.
 */
import * as tf from "@tensorflow/tfjs";

interface Bookkeeping {
  state: { tensorInfo: WeakMap<object, { bytes: number }> };
  trackTensor(a: tf.Tensor, backend?: unknown): void;
  removeDataId(dataId: object, backend: unknown): void;
}

export async function peakBufferBytes(f: () => void | Promise<void>): Promise<number> {
  const engine = tf.engine() as unknown as Bookkeeping;
  const { trackTensor, removeDataId } = engine;
  let live = 0;
  let peak = 0;
  engine.trackTensor = function (a, backend) {
    const fresh = !engine.state.tensorInfo.has(a.dataId);
    trackTensor.call(this, a, backend);
    if (fresh) peak = Math.max(peak, (live += engine.state.tensorInfo.get(a.dataId)?.bytes ?? 0));
  };
  engine.removeDataId = function (dataId, backend) {
    live -= engine.state.tensorInfo.get(dataId)?.bytes ?? 0;
    removeDataId.call(this, dataId, backend);
  };
  try {
    await f();
  } finally {
    engine.trackTensor = trackTensor;
    engine.removeDataId = removeDataId;
  }
  return peak;
}
