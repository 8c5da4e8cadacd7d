/**
 * Causal multi-head self-attention, as the book's `MultiHeadAttention` (chapter 3):
 * separate query, key and value projections, split into heads, scaled dot
 * products, a mask so no token sees the ones after it, softmax, dropout on the
 * attention weights, then the heads are joined and projected.
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../core/random";
import { dropout } from "./dropout";
import { Linear } from "./linear";
import { ParamContext } from "./params";

export class MultiHeadAttention {
  readonly wQuery: Linear;
  readonly wKey: Linear;
  readonly wValue: Linear;
  readonly outProj: Linear;
  readonly nHeads: number;
  readonly headDim: number;

  constructor(
    ctx: ParamContext,
    name: string,
    embDim: number,
    nHeads: number,
    private readonly dropRate: number,
    qkvBias: boolean,
    residualStd = 0.02,
  ) {
    this.nHeads = nHeads;
    this.headDim = embDim / nHeads;
    this.wQuery = new Linear(ctx, `${name}.wQuery`, embDim, embDim, { bias: qkvBias });
    this.wKey = new Linear(ctx, `${name}.wKey`, embDim, embDim, { bias: qkvBias });
    this.wValue = new Linear(ctx, `${name}.wValue`, embDim, embDim, { bias: qkvBias });
    this.outProj = new Linear(ctx, `${name}.outProj`, embDim, embDim, { std: residualStd });
  }

  /** (B, T, C) -> (B, T, C) */
  apply(x: tf.Tensor, training: boolean, rng: Rng): tf.Tensor {
    const [b, t, c] = x.shape;
    const heads = (y: tf.Tensor) =>
      y
        .reshape([b, t, this.nHeads, this.headDim]) // (B, T, C) -> (B, T, nHeads, headDim)
        .transpose([0, 2, 1, 3]); // -> (B, nHeads, T, headDim)
    const queries = heads(this.wQuery.apply(x));
    const keys = heads(this.wKey.apply(x));
    const values = heads(this.wValue.apply(x));

    // divide by sqrt(headDim) so the scores' spread does not grow with the head size,
    // which would push softmax towards one-hot and shrink its gradients
    // (B, nHeads, T, headDim) @ (B, nHeads, headDim, T) -> (B, nHeads, T, T)
    const scores = tf.div(tf.matMul(queries, keys, false, true), Math.sqrt(this.headDim));
    // token i may attend to tokens 0..i: add -inf above the diagonal (the book's masked_fill),
    // so softmax gives the future exactly zero weight
    const positions = tf.range(0, t, 1, "int32");
    const allowed = tf.greaterEqual(positions.reshape([t, 1]), positions.reshape([1, t])); // (T, 1) >= (1, T) -> (T, T), query >= key
    const maskBias = tf.where(allowed, tf.zeros([t, t]), tf.fill([t, t], -Infinity)); // (T, T): 0 or -inf
    const masked = tf.add(scores, maskBias); // (B, nHeads, T, T) + (T, T)
    let weights = tf.softmax(masked, -1); // (B, nHeads, T, T), rows sum to 1
    weights = dropout(weights, this.dropRate, training, rng);

    const context = tf
      .matMul(weights, values) // (B, nHeads, T, T) @ (B, nHeads, T, headDim) -> (B, nHeads, T, headDim)
      .transpose([0, 2, 1, 3]) // -> (B, T, nHeads, headDim)
      .reshape([b, t, c]); // -> (B, T, C), the heads side by side
    return this.outProj.apply(context);
  }
}
