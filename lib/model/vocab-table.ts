/**
 * The model's two vocabulary-sized tables: the token embedding (V, C), looked up by token id, and the
 * output head (C, V), which turns a hidden state into one logit per token.
 *
 * Normally each is one variable (`tokEmb.weight`, and the head a Linear `outHead`, so LoRA can wrap it).
 * On a GPU that binds less than a table's size in one buffer (WebGPU's default 128 MiB, Mesa's lavapipe;
 * gpt2-small's tables are 147 MiB, gpt2-medium's 196 MiB) each is kept as blocks of vocabulary rows
 * (`vocabBlocks`): `tokEmb.weight:0`, `tokEmb.weight:1`, … of (count, C), and `outHead.weight:0`, … of
 * (C, count). The lookup adds up each block's rows (a token's id falls in exactly one block), and the head
 * concatenates each block's logits. A split model computes the same numbers, and saves and loads the
 * same files; LoRA is not offered on a split head.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import { webgpuAdapter } from "../engine/webgpu";
import type { GPTConfig } from "./config";
import { Linear } from "./linear";
import { ParamContext, normalParam, normalParts } from "./params";
import { vocabBlocks } from "./vocab-blocks";

export const TOKEN_EMBEDDING = "tokEmb.weight";
export const HEAD_WEIGHT = "outHead.weight";

export class VocabTables {
  /** [start, count] of each block of vocabulary rows (one block: not split) */
  readonly blocks: Array<[number, number]>;
  /** the token embedding's blocks, (count, C) each */
  readonly embParts: tf.Variable[];
  /** the head as a Linear (C, V) when not split; null when split */
  head: Linear | null = null;
  /** the head's blocks, (C, count) each (the Linear's weight when not split) */
  headParts: tf.Variable[] = [];

  /** Makes the token embedding; the head comes later (`makeHead`), in the book's order of parameters. */
  constructor(ctx: ParamContext, private readonly cfg: GPTConfig) {
    const { vocabSize: V, embDim: C } = cfg;
    this.blocks = vocabBlocks(V, C, webgpuAdapter()?.maxBufferBytes ?? Infinity);
    this.embParts = this.split ? normalParts(ctx, TOKEN_EMBEDDING, this.blocks.map(([, n]) => [n, C])) : [normalParam(ctx, TOKEN_EMBEDDING, [V, C])];
  }

  /** Make the output head: a Linear (C, V) without bias, or its blocks (C, count). */
  makeHead(ctx: ParamContext): void {
    const { vocabSize: V, embDim: C } = this.cfg;
    if (this.split) {
      this.headParts = normalParts(ctx, HEAD_WEIGHT, this.blocks.map(([, n]) => [C, n]));
    } else {
      this.head = new Linear(ctx, "outHead", C, V, { bias: false }); // (C, V)
      this.headParts = [this.head.weight];
    }
  }

  get split(): boolean {
    return this.blocks.length > 1;
  }

  /** Token ids (N,) int32 -> their embeddings (N, C). */
  embed(ids: tf.Tensor1D): tf.Tensor2D {
    if (!this.split) return tf.gather(this.embParts[0], ids) as tf.Tensor2D;
    return tf.tidy(() => {
      let out: tf.Tensor | null = null;
      this.blocks.forEach(([start, count], j) => {
        const local = tf.sub(ids, tf.scalar(start, "int32")); // (N,) ids relative to the block
        const inside = tf.logicalAnd(tf.greaterEqual(local, 0), tf.less(local, count)); // (N,)
        const rows = tf.gather(this.embParts[j], tf.cast(tf.clipByValue(local, 0, count - 1), "int32")); // (N, C)
        const part = tf.mul(rows, tf.expandDims(tf.cast(inside, "float32"), 1)); // zero where the id is elsewhere
        out = out === null ? part : tf.add(out, part);
      });
      return out as unknown as tf.Tensor2D;
    });
  }

  /** Hidden states (..., C) -> logits (..., V). */
  logits(x: tf.Tensor): tf.Tensor {
    if (this.head !== null) return this.head.apply(x);
    const C = this.cfg.embDim;
    return tf.tidy(() => {
      const rows = x.reshape([-1, C]); // (N, C)
      const parts = this.headParts.map((w) => tf.matMul(rows, w)); // (N, C) @ (C, count) -> (N, count)
      return tf.concat(parts, 1).reshape([...x.shape.slice(0, -1), this.cfg.vocabSize]); // (N, V) -> (..., V)
    });
  }

  /** The head's whole weight (C, V); a ConfigError when split (callers check `split` first). */
  headWeight(): tf.Variable {
    if (this.head === null) throw new ConfigError("the output head is split into vocabulary blocks on this device");
    return this.head.weight;
  }

  /** A table's values in its whole layout, row-major: "tokEmb.weight" (V, C) or "outHead.weight" (C, V). */
  async values(name: string): Promise<Float32Array> {
    const { vocabSize: V, embDim: C } = this.cfg;
    const parts = name === TOKEN_EMBEDDING ? this.embParts : this.headParts;
    if (parts.length === 1) return (await parts[0].data()) as Float32Array;
    const out = new Float32Array(V * C);
    for (const [j, [start, count]] of this.blocks.entries()) {
      const data = (await parts[j].data()) as Float32Array;
      if (name === TOKEN_EMBEDDING) out.set(data, start * C);
      else for (let c = 0; c < C; c++) out.set(data.subarray(c * count, (c + 1) * count), c * V + start);
    }
    return out;
  }

  /** Set a table from values in its whole layout (see `values`). */
  setValues(name: string, data: Float32Array): void {
    const { vocabSize: V, embDim: C } = this.cfg;
    const parts = name === TOKEN_EMBEDDING ? this.embParts : this.headParts;
    this.blocks.forEach(([start, count], j) => {
      let block: Float32Array;
      if (parts.length === 1) block = data;
      else if (name === TOKEN_EMBEDDING) block = data.subarray(start * C, (start + count) * C);
      else {
        block = new Float32Array(C * count);
        for (let c = 0; c < C; c++) block.set(data.subarray(c * V + start, c * V + start + count), c * count);
      }
      const t = tf.tensor(block, parts[j].shape, "float32");
      parts[j].assign(t);
      t.dispose();
    });
  }
}
