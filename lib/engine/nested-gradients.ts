/**
 * Gradients computed inside another gradient's backward pass (a custom op's gradient function that
 * differentiates a recomputed forward pass: lib/model/recompute.ts).
 *
 * TF.js 4.22's `engine.gradients` keeps one tape: a second call while the first one's backward pass
 * runs starts a fresh tape in its place and, when done, sets it to null, so the outer call fails
 * ("Cannot read properties of null") and never frees its saved tensors. This runs the inner call and
 * puts the outer tape back. Written against tfjs-core 4.22's Engine (`state.activeTape`); it checks
 * that the field is there and says so when it is not.
 */
import * as tf from "@tensorflow/tfjs";

interface EngineWithTape {
  state: { activeTape: unknown[] | null };
}

/** `tf.engine().gradients(f, xs)` that may run inside a backward pass; returns the gradients (f's value is freed). */
export function nestedGradients(f: () => tf.Scalar, xs: tf.Tensor[]): tf.Tensor[] {
  const engine = tf.engine() as unknown as EngineWithTape;
  if (engine.state === undefined || !("activeTape" in engine.state)) {
    throw new Error(`nestedGradients: this TF.js (${tf.version.tfjs}) has no engine.state.activeTape; written for 4.22`);
  }
  const outer = engine.state.activeTape;
  try {
    const { value, grads } = tf.engine().gradients(f, xs);
    value.dispose();
    return grads;
  } finally {
    engine.state.activeTape = outer;
  }
}
