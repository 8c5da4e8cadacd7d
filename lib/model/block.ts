/**
 * One transformer block, as the book's `TransformerBlock` (chapter 4):
 * pre-LayerNorm, attention and feed-forward each wrapped in a residual
 * connection with dropout on the branch.
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import { Rng } from "../core/random";
import { MultiHeadAttention } from "./attention";
import { GPTConfig } from "./config";
import { dropout } from "./dropout";
import { FeedForward } from "./feedforward";
import { residualAdd } from "./fused-attention";
import { fuseNow } from "./fused-layers";
import type { LayerKVCache } from "./kv-cache";
import { LayerNorm } from "./layernorm";
import { ParamContext } from "./params";

export class TransformerBlock {
  readonly norm1: LayerNorm;
  readonly att: MultiHeadAttention;
  readonly norm2: LayerNorm;
  readonly ff: FeedForward;

  constructor(ctx: ParamContext, name: string, private readonly cfg: GPTConfig) {
    // GPT-2 scales the init of the layers that write into the residual stream by
    // 1/sqrt(2 nLayers): each block adds two branches, and the sum should not grow with depth
    const residualStd = INIT_STD / Math.sqrt(2 * cfg.nLayers);
    this.norm1 = new LayerNorm(ctx, `${name}.norm1`, cfg.embDim);
    this.att = new MultiHeadAttention(ctx, `${name}.att`, cfg.embDim, cfg.nHeads, cfg.dropRate, cfg.qkvBias, residualStd);
    this.norm2 = new LayerNorm(ctx, `${name}.norm2`, cfg.embDim);
    this.ff = new FeedForward(ctx, `${name}.ff`, cfg.embDim, residualStd);
  }

  /** (B, T, C) -> (B, T, C); `cache` holds this block's attention keys and values while generating. */
  apply(x: tf.Tensor, training: boolean, rng: Rng, cache?: LayerKVCache): tf.Tensor {
    const rate = this.cfg.dropRate;
    // a scope per block: its temporaries go as soon as it is done, not when the whole forward pass is (what a
    // training step's backward pass needs, the tape has kept)
    return tf.tidy(() => {
      // while a tape records, an addition that keeps neither branch for the backward pass (fused-attention.ts)
      const add = fuseNow() ? residualAdd : tf.add;
      const attended = this.att.apply(this.norm1.apply(x), training, rng, cache);
      const mid = add(x, dropout(attended, rate, training, rng)); // shortcut around attention
      const fed = this.ff.apply(this.norm2.apply(mid));
      return add(mid, dropout(fed, rate, training, rng)); // shortcut around the feed-forward
    });
  }
}
