/**
 * The attention block's reshuffles, its masked softmax and the residual additions as single ops with their own
 * gradients (as fused-layers.ts does for GELU, LayerNorm and the linear layers), so that a training step keeps
 * only what their backward passes need.
 *
 * TF.js's autodiff keeps every op's inputs, including ops whose gradient needs only shapes: a Reshape keeps its
 * input (the query, key and value projections, each (B, T, C), held only by the reshape that splits their
 * heads), an Add keeps both (the attention and feed-forward branches, held only by the residual addition),
 * and the division by √headDim and the mask's addition keep the (B, H, T, T) scores twice over. On gpt2-small
 * that is ~7 (B, T, C)-sized tensors a block, ~140 MB at the book's batch. Here:
 *
 *   splitHeads  (B, T, C) -> (B, H, T, D): reshape and transpose; keeps nothing (the gradient transposes back)
 *   mergeHeads  (B, H, T, D) -> (B, T, C): the reverse; keeps nothing
 *   maskedSoftmax  y = softmax(scores / √D + mask); keeps y: dscores = y ⊙ (dy − Σ dy ⊙ y) / √D
 *   residualAdd  a + b of one shape; keeps nothing: da = db = dy
 *
 * Each forward pass runs the plain model's ops (attention.ts, block.ts), so the values are the same; they run
 * only while a tape records (fused-layers.ts's `fuseNow`), and `COURSE_FUSED_LAYERS=0` turns them off with the
 * rest. test/model-fused-layers.test.ts checks them against the plain ops.
 */
import * as tf from "@tensorflow/tfjs";

/** (B, T, H·D) -> (B, H, T, D), keeping nothing for the backward pass. */
export function splitHeads(y: tf.Tensor, nHeads: number): tf.Tensor4D {
  const [b, t, c] = y.shape;
  const d = c / nHeads;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const x = args[0] as tf.Tensor;
    const value = x.reshape([b, t, nHeads, d]).transpose([0, 2, 1, 3]); // (B, T, H, D) -> (B, H, T, D)
    const gradFunc = (dy: tf.Tensor) => tf.tidy(() => dy.transpose([0, 2, 1, 3]).reshape([b, t, c]));
    return { value, gradFunc };
  });
  return run(y) as tf.Tensor4D;
}

/** (B, H, T, D) -> (B, T, H·D), keeping nothing for the backward pass. */
export function mergeHeads(x: tf.Tensor): tf.Tensor3D {
  const [b, h, t, d] = x.shape;
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const v = args[0] as tf.Tensor;
    const value = v.transpose([0, 2, 1, 3]).reshape([b, t, h * d]); // (B, T, H, D) -> (B, T, C)
    const gradFunc = (dy: tf.Tensor) => tf.tidy(() => dy.reshape([b, t, h, d]).transpose([0, 2, 1, 3]));
    return { value, gradFunc };
  });
  return run(x) as tf.Tensor3D;
}

/**
 * softmax(scores / scale + maskBias) over the last axis, keeping only its output. `maskBias` (broadcast to the
 * scores, no gradient) may be null. The same ops as attention.ts's plain path, in its order.
 */
export function maskedSoftmax(scores: tf.Tensor, scale: number, maskBias: tf.Tensor | null): tf.Tensor {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [s, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const scaled = tf.div(s, scale);
    const value = tf.softmax(maskBias === null ? scaled : tf.add(scaled, maskBias), -1);
    save([value]);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const y = saved[0];
        const dot = tf.sum(tf.mul(dy, y), -1, true); // Σ dy ⊙ y over each row
        return tf.div(tf.mul(y, tf.sub(dy, dot)), scale);
      });
    return { value, gradFunc };
  });
  return run(scores);
}

/** a + b (the same shape), keeping nothing for the backward pass. */
export const residualAdd = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [a, b] = args as [tf.Tensor, tf.Tensor];
  return { value: tf.add(a, b), gradFunc: (dy: tf.Tensor) => [dy.clone(), dy.clone()] };
}) as (a: tf.Tensor, b: tf.Tensor) => tf.Tensor;
