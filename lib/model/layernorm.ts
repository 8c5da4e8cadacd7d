/**
 * Layer normalization, as the book's `LayerNorm` (chapter 4): each token's
 * vector is shifted to mean 0 and scaled to variance 1, then a learned
 * `scale` and `shift` give the model back the freedom to undo it.
 */
import * as tf from "@tensorflow/tfjs";
import { fuseNow, layerNormFused } from "./fused-layers";
import { ParamContext, constParam } from "./params";

/** Added to the variance so a constant vector does not divide by zero; GPT-2 uses 1e-5. */
export const LAYERNORM_EPS = 1e-5;

export class LayerNorm {
  readonly scale: tf.Variable;
  readonly shift: tf.Variable;

  constructor(ctx: ParamContext, name: string, embDim: number) {
    this.scale = constParam(ctx, `${name}.scale`, [embDim], 1);
    this.shift = constParam(ctx, `${name}.shift`, [embDim], 0);
  }

  /** (B, T, C) -> (B, T, C), normalized over C */
  apply(x: tf.Tensor): tf.Tensor {
    // the same ops as one op that keeps only x for the backward pass (fused-layers.ts)
    if (fuseNow()) return layerNormFused(x, this.scale as tf.Tensor1D, this.shift as tf.Tensor1D, LAYERNORM_EPS);
    const mean = tf.mean(x, -1, true); // (B, T, 1)
    const centered = tf.sub(x, mean); // (B, T, C)
    // divide by C, not C - 1 (biased variance), as torch's `var(unbiased=False)` and GPT-2
    const variance = tf.mean(tf.square(centered), -1, true); // (B, T, 1)
    const normed = tf.div(centered, tf.sqrt(tf.add(variance, LAYERNORM_EPS))); // (B, T, C)
    return tf.add(tf.mul(normed, this.scale), this.shift); // (B, T, C) * (C,) + (C,)
  }
}
