/**
 * A faster way to get the next-token logits while generating: a key/value cache.
 *
 * The plain loop (generate.ts, the book's) runs the whole model on the whole text for
 * every new token and then keeps only the last position's logits. Two things are wasted:
 * the keys and values of earlier tokens, which never change (attention is causal), and
 * the output head on every position but the last — for a small model the head
 * (C x 50,257) is most of the work. This decoder keeps each layer's keys and values and
 * feeds only the new token through the blocks, and the head only the last position.
 *
 * It reads the model's parameters by their library names and repeats the model's
 * formulas (pre-LayerNorm blocks, causal attention, GELU tanh, final LayerNorm, head)
 * in inference form, without dropout. test/generate.test.ts checks it against
 * `GPTModel.forward` and the PyTorch greedy tokens. The notebooks teach the plain loop.
 */
import * as tf from "@tensorflow/tfjs";
import type { GPTModel } from "../model/gpt";
import { LAYERNORM_EPS } from "../model/layernorm";
import { gelu } from "../model/feedforward";

export class KVCacheDecoder {
  private readonly model: GPTModel;
  /** per layer: keys and values of every position so far, (B, nHeads, T, headDim) */
  private keys: tf.Tensor4D[] = [];
  private values: tf.Tensor4D[] = [];
  /** positions already in the cache */
  length = 0;

  constructor(model: GPTModel) {
    this.model = model;
  }

  private p(name: string): tf.Variable {
    return this.model.param(name);
  }

  private layerNorm(x: tf.Tensor, name: string): tf.Tensor {
    const mean = tf.mean(x, -1, true); // (B, t, 1)
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true); // biased, as the model
    const normed = tf.div(centered, tf.sqrt(tf.add(variance, LAYERNORM_EPS)));
    return tf.add(tf.mul(normed, this.p(`${name}.scale`)), this.p(`${name}.shift`));
  }

  private linear(x: tf.Tensor, name: string, bias = true): tf.Tensor {
    const w = this.p(`${name}.weight`); // (in, out)
    const [inDim, outDim] = w.shape;
    const lead = x.shape.slice(0, -1);
    let y = tf.matMul(x.reshape([-1, inDim]), w); // (N, in) @ (in, out) -> (N, out)
    if (bias && this.model.params.has(`${name}.bias`)) y = tf.add(y, this.p(`${name}.bias`));
    return y.reshape([...lead, outDim]);
  }

  /**
   * Feed `ids` (B rows of t new tokens each, at positions length..length+t-1) and return
   * the logits of the last new position, (B, V). The cache grows by t.
   */
  next(ids: number[][]): tf.Tensor2D {
    const cfg = this.model.cfg;
    const b = ids.length;
    const t = ids[0].length;
    const past = this.length;
    if (past + t > cfg.contextLength) {
      throw new Error(`KVCacheDecoder: ${past + t} positions exceed the context length ${cfg.contextLength}`);
    }
    const nHeads = cfg.nHeads;
    const headDim = cfg.embDim / nHeads;
    const newKeys: tf.Tensor4D[] = [];
    const newValues: tf.Tensor4D[] = [];
    const logits = tf.tidy(() => {
      const idx = tf.tensor1d(ids.flat(), "int32"); // (B*t,)
      const tok = tf.gather(this.p("tokEmb.weight"), idx).reshape([b, t, cfg.embDim]); // (B, t, C)
      const pos = tf.gather(this.p("posEmb.weight"), tf.range(past, past + t, 1, "int32")); // (t, C)
      let x: tf.Tensor = tf.add(tok, pos); // (B, t, C)
      // new query i (position past+i) may see keys 0..past+i
      const q = tf.range(past, past + t, 1, "int32").reshape([t, 1]);
      const k = tf.range(0, past + t, 1, "int32").reshape([1, past + t]);
      const maskBias = tf.where(tf.greaterEqual(q, k), tf.zeros([t, past + t]), tf.fill([t, past + t], -Infinity)); // (t, past+t)
      for (let i = 0; i < cfg.nLayers; i++) {
        const name = `blocks.${i}`;
        const h = this.layerNorm(x, `${name}.norm1`);
        const heads = (y: tf.Tensor) => y.reshape([b, t, nHeads, headDim]).transpose([0, 2, 1, 3]); // (B, t, C) -> (B, H, t, hd)
        const query = heads(this.linear(h, `${name}.att.wQuery`));
        let key = heads(this.linear(h, `${name}.att.wKey`)) as tf.Tensor4D;
        let value = heads(this.linear(h, `${name}.att.wValue`)) as tf.Tensor4D;
        if (past > 0) {
          key = tf.concat([this.keys[i], key], 2); // (B, H, past, hd) ++ (B, H, t, hd) -> (B, H, past+t, hd)
          value = tf.concat([this.values[i], value], 2);
        }
        newKeys.push(tf.keep(key));
        newValues.push(tf.keep(value));
        const scores = tf.div(tf.matMul(query, key, false, true), Math.sqrt(headDim)); // (B, H, t, past+t)
        const weights = tf.softmax(tf.add(scores, maskBias), -1);
        const context = tf
          .matMul(weights, value) // (B, H, t, past+t) @ (B, H, past+t, hd) -> (B, H, t, hd)
          .transpose([0, 2, 1, 3]) // -> (B, t, H, hd)
          .reshape([b, t, cfg.embDim]); // -> (B, t, C)
        x = tf.add(x, this.linear(context, `${name}.att.outProj`));
        const fed = this.linear(gelu(this.linear(this.layerNorm(x, `${name}.norm2`), `${name}.ff.fc1`)), `${name}.ff.fc2`);
        x = tf.add(x, fed);
      }
      const last = x.slice([0, t - 1, 0], [b, 1, cfg.embDim]).reshape([b, cfg.embDim]); // (B, C), the last position only
      return this.linear(this.layerNorm(last, "finalNorm"), "outHead", false) as tf.Tensor2D; // (B, C) @ (C, V) -> (B, V)
    });
    this.dispose();
    this.keys = newKeys;
    this.values = newValues;
    this.length = past + t;
    return logits;
  }

  /** Free the cached keys and values (the decoder can start again from position 0). */
  dispose(): void {
    tf.dispose([...this.keys, ...this.values]);
    this.keys = [];
    this.values = [];
    this.length = 0;
  }
}
