/**
 * The feed-forward network inside each transformer block (the book's
 * `FeedForward` and `GELU`, chapter 4): widen each token's vector 4x, apply
 * GELU, project back. It acts on every position separately.
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import { fuseNow, geluFused } from "./fused-layers";
import { Linear } from "./linear";
import { ParamContext } from "./params";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU with the tanh approximation GPT-2 was trained with:
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x); // x^3 (two multiplications: cheaper than tf.pow, forward and backward)
  const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, cube)));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

export class FeedForward {
  readonly fc1: Linear;
  readonly fc2: Linear;

  /** `residualStd`: init std of the projection back into the residual stream (see block.ts). */
  constructor(ctx: ParamContext, name: string, embDim: number, residualStd = INIT_STD) {
    this.fc1 = new Linear(ctx, `${name}.fc1`, embDim, 4 * embDim);
    this.fc2 = new Linear(ctx, `${name}.fc2`, 4 * embDim, embDim, { std: residualStd });
  }

  /** (B, T, C) -> (B, T, C) */
  apply(x: tf.Tensor): tf.Tensor {
    // the fused GELU (fused-layers.ts) computes the same values and keeps only its input for the backward pass
    const hidden = (fuseNow() ? geluFused : gelu)(this.fc1.apply(x)); // (B, T, C) -> (B, T, 4C)
    return this.fc2.apply(hidden); // (B, T, 4C) -> (B, T, C)
  }
}
