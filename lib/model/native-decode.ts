/**
 * One generated token's forward pass on the native engine: the model's cached forward pass (gpt.ts with a KV
 * cache, kv-cache.ts), each op called straight through libtensorflow (lib/engine/native-ops.ts's NativeOps).
 *
 * Why: with a cache, a token of gpt2-small is ~12–15 ms of matrix–vector products (every weight read once) and,
 * through TF.js, ~760 small ops that cost more than that: 32 ms a token in all on this project's 2-core machine.
 * Called directly, an op costs ~5–10 µs instead of 9–26 (no kernel lookup, no fresh axis or shape tensor, no cast
 * before each mean, no scope per block), and one token a row needs fewer: its (B, C) row is already
 * (B, nHeads, 1, headDim) in memory, so no transpose. Measured: 23.6 ms a step instead of 32.
 *
 * The same ops in the same order as the plain path (LayerNorm's mean, centring, variance and division; the tanh
 * GELU; the scaled scores, the padding bias, softmax), with three differences that change only float32 rounding:
 * the queries, keys and values come from the one side-by-side product the cache keeps (kv-cache.ts's FUSED_QKV);
 * the weights are multiplied by TensorFlow's 2-D `MatMul` (20–25% faster for one row than TF.js's
 * `BatchMatMulV2`); and attention's two products are `BatchMatMulV3`, which oneDNN leaves to Eigen (oneDNN's
 * `BatchMatMulV2` sets itself up anew for every new key count: ~95 µs a call against ~15).
 * test/generate-native.test.ts holds the logits to the plain path's within 3e-6.
 *
 * Only for one new token a row (a prompt goes through the plain path, which fills the same cache), on the native
 * engine, without LoRA and with whole vocabulary tables; `COURSE_NATIVE_DECODE=0` turns it off.
 */
import * as tf from "@tensorflow/tfjs";
import { NativeOps, nativeBackend } from "../engine/native-ops";
import type { GPTModel } from "./gpt";
import type { KVCache } from "./kv-cache";
import { LAYERNORM_EPS } from "./layernorm";
import type { Linear } from "./linear";

/** Whether generation's one-token steps run here on the native engine (`COURSE_NATIVE_DECODE=0`: the plain path). */
export const NATIVE_DECODE = { on: process.env.COURSE_NATIVE_DECODE !== "0" };

/** Why `model` cannot take its one-token steps here now, or null when it can. */
export function nativeDecodeProblem(model: GPTModel): string | null {
  if (!NATIVE_DECODE.on) return "switched off (COURSE_NATIVE_DECODE=0)";
  if (nativeBackend() === null) return `the engine is ${tf.getBackend()}, not the native one`;
  if (model.lora !== null) return "a LoRA adapter is attached";
  if (model.tables.split) return "the vocabulary tables are split";
  return null;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

interface BlockWeights {
  norm1: [tf.Tensor, tf.Tensor];
  norm2: [tf.Tensor, tf.Tensor];
  query: Linear;
  key: Linear;
  value: Linear;
  outProj: Linear;
  fc1: Linear;
  fc2: Linear;
}

export class NativeDecoder {
  private readonly ops = new NativeOps();
  private readonly blocks: BlockWeights[] = [];
  private readonly finalNorm: [tf.Tensor, tf.Tensor];
  private readonly posEmb: tf.Tensor;

  constructor(private readonly model: GPTModel) {
    const param = (name: string): tf.Tensor => {
      const p = model.params.get(name);
      if (p === undefined) throw new Error(`NativeDecoder: the model has no parameter ${name}`);
      return p;
    };
    const linears = model.linears();
    const linear = (name: string): Linear => {
      const l = linears.get(name);
      if (l === undefined) throw new Error(`NativeDecoder: the model has no layer ${name}`);
      return l;
    };
    for (let i = 0; i < model.cfg.nLayers; i++) {
      const p = `blocks.${i}.`;
      this.blocks.push({
        norm1: [param(`${p}norm1.scale`), param(`${p}norm1.shift`)],
        norm2: [param(`${p}norm2.scale`), param(`${p}norm2.shift`)],
        query: linear(`${p}att.wQuery`),
        key: linear(`${p}att.wKey`),
        value: linear(`${p}att.wValue`),
        outProj: linear(`${p}att.outProj`),
        fc1: linear(`${p}ff.fc1`),
        fc2: linear(`${p}ff.fc2`),
      });
    }
    this.finalNorm = [param("finalNorm.scale"), param("finalNorm.shift")];
    this.posEmb = param("posEmb.weight");
  }

  /**
   * ids: one new token a row (B, 1), after the `cache`'s positions -> the logits of those tokens (B, V).
   * Appends every layer's keys and values to `cache` and advances it, as `model.hidden(ids, { cache })` does.
   */
  logits(ids: number[][], cache: KVCache): tf.Tensor2D {
    const { embDim: c, nHeads, vocabSize } = this.model.cfg;
    const b = ids.length;
    if (ids.some((row) => row.length !== 1)) throw new Error("NativeDecoder: one new token a row");
    const past = cache.length;
    if (past + 1 > this.model.cfg.contextLength) throw new Error(`NativeDecoder: ${past} cached + 1 new token exceed the context length ${this.model.cfg.contextLength}`);
    if (past > 0 && cache.batchSize !== b) throw new Error(`NativeDecoder: ${b} rows fed to a KV cache holding ${cache.batchSize}`);
    const o = this.ops;
    const logits = tf.tidy(() => {
      const idx = tf.tensor1d(ids.map((row) => row[0]), "int32"); // (B,)
      const rowPositions = cache.positions(1); // (B, 1) in a left-padded batch, else null: every row at `past`
      const pos = rowPositions ? tf.gather(this.posEmb, rowPositions.reshape([-1])) : tf.gather(this.posEmb, tf.tensor1d([past], "int32")); // (B, C) or (1, C)
      let x = o.add(this.model.tables.embed(idx), pos); // (B, C)
      const n = past + 1; // keys each query sees
      const padBias = cache.padBias(n); // (B, 1, 1, n) or null
      const headDim = c / nHeads;
      const scale = o.scalar(Math.sqrt(headDim));
      this.blocks.forEach((w, i) => {
        const layer = cache.layer(i);
        // attention: queries, keys and values (B, 3C) from one product; (B, 3C) is (B, 3·nHeads, 1, headDim) in memory
        const qkv = layer.qkvWeights({ weights: [w.query.weight, w.key.weight, w.value.weight], biases: biasesOf([w.query, w.key, w.value]) });
        let y = o.matMul2d(this.layerNorm(x, w.norm1), qkv.w); // (B, C) @ (C, 3C) -> (B, 3C)
        if (qkv.b !== null) y = o.add(y, qkv.b);
        const [q, k, v] = o.split(o.reshape(y, [b, 3 * nHeads, 1, headDim]), 3, 1); // 3 × (B, nHeads, 1, headDim)
        const all = layer.append(k as tf.Tensor4D, v as tf.Tensor4D, (old, fresh) => o.concat([old, fresh], 2)); // (B, nHeads, n, headDim)
        // one query a head: its dot products with the n keys as a product and a sum over headDim, and the values
        // weighted and summed over n (TF's batched matrix product sets itself up anew for every new n, ~95 µs a call)
        let scores = o.div(o.matMulV3(q, all.keys, true), scale); // (B, nHeads, 1, headDim) @ (B, nHeads, headDim, n) -> (B, nHeads, 1, n)
        if (padBias !== null) scores = o.add(scores, padBias); // + (B, 1, 1, n)
        const context = o.reshape(o.matMulV3(o.softmax(scores), all.values), [b, c]); // (B, nHeads, 1, n) @ (B, nHeads, n, headDim) -> (B, C)
        x = o.add(x, this.linear(context, w.outProj)); // shortcut around attention
        // feed-forward: widen, GELU, project back
        x = o.add(x, this.linear(this.gelu(this.linear(this.layerNorm(x, w.norm2), w.fc1)), w.fc2)); // shortcut around it
      });
      return o.matMul2d(this.layerNorm(x, this.finalNorm), this.model.headWeight) as tf.Tensor2D; // (B, C) @ (C, V) -> (B, V)
    });
    cache.advance(1, b);
    if (logits.shape[1] !== vocabSize) throw new Error("NativeDecoder: the head gave the wrong width");
    return logits;
  }

  /** layernorm.ts's ops: (x − mean) / √(var + ε) · scale + shift over the last axis, (B, C) */
  private layerNorm(x: tf.Tensor, [scale, shift]: [tf.Tensor, tf.Tensor]): tf.Tensor {
    const o = this.ops;
    const centered = o.sub(x, o.meanLast(x)); // (B, C)
    const variance = o.meanLast(o.square(centered)); // (B, 1), biased
    const normed = o.div(centered, o.sqrt(o.add(variance, o.scalar(LAYERNORM_EPS))));
    return o.add(o.mul(normed, scale), shift);
  }

  /** linear.ts's ops: x @ W (+ b), (B, in) -> (B, out) */
  private linear(x: tf.Tensor, layer: Linear): tf.Tensor {
    const y = this.ops.matMul2d(x, layer.weight);
    return layer.bias === null ? y : this.ops.add(y, layer.bias);
  }

  /** feedforward.ts's tanh GELU, op for op */
  private gelu(x: tf.Tensor): tf.Tensor {
    const o = this.ops;
    const cube = o.mul(o.mul(x, x), x);
    const inner = o.mul(o.scalar(SQRT_2_OVER_PI), o.add(x, o.mul(o.scalar(0.044715), cube)));
    return o.mul(o.mul(o.scalar(0.5), x), o.add(o.scalar(1), o.tanh(inner)));
  }

  /** Free the kept constants (the cache owns the keys, values and side-by-side weights). */
  dispose(): void {
    this.ops.dispose();
  }
}

/** The three layers' biases, or null when they have none (GPT-2 has them; the book's config leaves them out). */
function biasesOf(layers: Linear[]): tf.Tensor1D[] | null {
  const biases = layers.map((l) => l.bias);
  return biases.every((bias): bias is tf.Variable => bias !== null) ? (biases as tf.Tensor1D[]) : null;
}
