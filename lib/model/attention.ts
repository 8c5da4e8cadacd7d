/**
 * Causal multi-head self-attention, as the book's `MultiHeadAttention` (chapter 3):
 * separate query, key and value projections, split into heads, scaled dot
 * products, a mask so no token sees the ones after it, softmax, dropout on the
 * attention weights, then the heads are joined and projected.
 *
 * With a key/value cache (kv-cache.ts, for generation) the T tokens fed are the newest
 * ones: their keys and values join the cached ones, and each attends to every earlier token
 * (in a left-padded batch, every earlier token of its own row: the cache's `padBias`).
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import { Rng } from "../core/random";
import { dropout } from "./dropout";
import { maskedSoftmax, mergeHeads, splitHeads } from "./fused-attention";
import { fuseNow } from "./fused-layers";
import { fusedQKVNow, type LayerKVCache } from "./kv-cache";
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
    residualStd = INIT_STD,
  ) {
    this.nHeads = nHeads;
    this.headDim = embDim / nHeads;
    this.wQuery = new Linear(ctx, `${name}.wQuery`, embDim, embDim, { bias: qkvBias });
    this.wKey = new Linear(ctx, `${name}.wKey`, embDim, embDim, { bias: qkvBias });
    this.wValue = new Linear(ctx, `${name}.wValue`, embDim, embDim, { bias: qkvBias });
    this.outProj = new Linear(ctx, `${name}.outProj`, embDim, embDim, { std: residualStd });
  }

  /** (B, T, C) -> (B, T, C); with `cache`, the T tokens come after the cached ones. */
  apply(x: tf.Tensor, training: boolean, rng: Rng, cache?: LayerKVCache): tf.Tensor {
    const [b, t, c] = x.shape;
    // a training step's tape records the same values through ops that keep less (fused-attention.ts)
    const fused = fuseNow() && cache === undefined;
    // one new token (generation): (B, 1, C) is already (B, nHeads, 1, headDim) in memory, a reshape and no transpose
    const heads = (y: tf.Tensor) =>
      fused
        ? splitHeads(y, this.nHeads)
        : t === 1
          ? (y.reshape([b, this.nHeads, 1, this.headDim]) as tf.Tensor4D)
          : (y
              .reshape([b, t, this.nHeads, this.headDim]) // (B, T, C) -> (B, T, nHeads, headDim)
              .transpose([0, 2, 1, 3]) as tf.Tensor4D); // -> (B, nHeads, T, headDim)
    const [q, k, v] = this.project(x, cache);
    const queries = heads(q);
    let keys = heads(k);
    let values = heads(v);
    // (B, nHeads, T, headDim) -> (B, nHeads, past + T, headDim): the cached tokens come first
    if (cache !== undefined) ({ keys, values } = cache.append(keys, values));
    const n = keys.shape[2]; // past + T keys
    const past = n - t;

    // (B, nHeads, T, headDim) @ (B, nHeads, headDim, past+T) -> (B, nHeads, T, past+T)
    const raw = tf.matMul(queries, keys, false, true);
    // a single query, the newest token, may see every key: there is nothing to mask
    let maskBias: tf.Tensor | null = null;
    if (t > 1) {
      // query i sits at position past+i and may attend to keys 0..past+i: add -inf to the
      // later ones (the book's masked_fill), so softmax gives the future exactly zero weight
      const queryPos = tf.range(past, past + t, 1, "int32").reshape([t, 1]); // (T, 1)
      const keyPos = tf.range(0, n, 1, "int32").reshape([1, n]); // (1, past+T)
      const allowed = tf.greaterEqual(queryPos, keyPos); // (T, 1) >= (1, past+T) -> (T, past+T), query >= key
      maskBias = tf.where(allowed, tf.zeros([t, n]), tf.fill([t, n], -Infinity)); // (T, past+T): 0 or -inf
    }
    let weights: tf.Tensor;
    if (fused) {
      weights = maskedSoftmax(raw, Math.sqrt(this.headDim), maskBias); // the ops below, keeping only the weights
    } else {
      // divide by sqrt(headDim) so the scores' spread does not grow with the head size,
      // which would push softmax towards one-hot and shrink its gradients
      let masked = tf.div(raw, Math.sqrt(this.headDim));
      if (maskBias !== null) masked = tf.add(masked, maskBias); // (B, nHeads, T, past+T) + (T, past+T)
      // a left-padded batch (generation): no query gives weight to its row's padding keys
      const padBias = cache?.padBias(n); // (B, 1, 1, past+T) or null
      if (padBias) masked = tf.add(masked, padBias); // (B, nHeads, T, past+T) + (B, 1, 1, past+T)
      weights = tf.softmax(masked, -1); // (B, nHeads, T, past+T), rows sum to 1
    }
    weights = dropout(weights, this.dropRate, training, rng);

    const perHead = tf.matMul(weights, values); // (B, nHeads, T, past+T) @ (B, nHeads, past+T, headDim) -> (B, nHeads, T, headDim)
    const context = fused
      ? mergeHeads(perHead)
      : (t === 1 ? perHead : perHead.transpose([0, 2, 1, 3])) // -> (B, T, nHeads, headDim)
          .reshape([b, t, c]); // -> (B, T, C), the heads side by side
    return this.outProj.apply(context);
  }

  /**
   * The queries, keys and values of x, each (B, T, C): three products (the book's layer), or while generating with
   * a cache one product with the three weights side by side (kv-cache.ts's FUSED_QKV), the same values up to float32 rounding.
   */
  private project(x: tf.Tensor, cache?: LayerKVCache): [tf.Tensor, tf.Tensor, tf.Tensor] {
    const parts = [this.wQuery, this.wKey, this.wValue];
    if (cache === undefined || !fusedQKVNow() || parts.some((p) => p.lora !== null)) {
      return [this.wQuery.apply(x), this.wKey.apply(x), this.wValue.apply(x)];
    }
    const biases = parts.map((p) => p.bias).filter((bias): bias is tf.Variable => bias !== null);
    const { w, b } = cache.qkvWeights({ weights: parts.map((p) => p.weight), biases: biases.length === 3 ? biases : null });
    const [bs, t, c] = x.shape;
    let y: tf.Tensor = tf.matMul(x.reshape([-1, c]), w); // (B·T, C) @ (C, 3C) -> (B·T, 3C)
    if (b !== null) y = tf.add(y, b); // + (3C,)
    return tf.split(y, 3, 1).map((part) => part.reshape([bs, t, c])) as [tf.Tensor, tf.Tensor, tf.Tensor]; // 3 × (B, T, C)
  }
}
