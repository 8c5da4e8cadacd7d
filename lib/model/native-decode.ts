/**
 * One generated token's forward pass on the native engine: the model's cached forward pass (gpt.ts with a KV
 * cache, kv-cache.ts), each op called straight through libtensorflow (lib/engine/native-ops.ts's NativeOps).
 *
 * Why: with a cache, a token of gpt2-small is ~12–15 ms of matrix–vector products (every weight read once) and,
 * through TF.js, ~760 small ops that cost more than that: 32 ms a token in all on this project's 2-core machine.
 * Called directly, an op costs ~5–10 µs instead of 9–26 (no kernel lookup, no fresh axis or shape tensor, no cast
 * before each mean, no scope per block), and one token a row needs fewer: its (B, C) row is already
 * (B, nHeads, 1, headDim) in memory, so no transpose; and the keys and values are written in place into buffers
 * of the generation's length instead of joined into a new copy every token. Measured (gpt2-small after a 60-token
 * prompt, this machine): 19.5–21.3 ms a step instead of 32.
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
import { PAD_BIAS, type KVCache } from "./kv-cache";
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

/** One layer's keys and values while the decoder holds them: (B, nHeads, L, headDim), and the same buffer as rows. */
interface HeldLayer {
  keys: tf.Tensor4D;
  values: tf.Tensor4D;
  /** (B·nHeads·L, headDim) views of the same buffers, the rows InplaceUpdate writes */
  keyRows: tf.Tensor2D;
  valueRows: tf.Tensor2D;
}

export class NativeDecoder {
  private readonly ops = new NativeOps();
  private readonly blocks: BlockWeights[] = [];
  private readonly finalNorm: [tf.Tensor, tf.Tensor];
  private readonly posEmb: tf.Tensor;
  /**
   * While one-token steps follow each other, every layer's keys and values live in buffers of `capacity`
   * positions that each step writes its token into, in place (InplaceUpdate), instead of the cache joining a new
   * copy of them all every token (ConcatV2: ~85 µs a layer and growing with the text, against ~8); attention
   * reads the whole buffer, the positions not yet written given no weight. `release` hands them back to the cache.
   */
  private held: { layers: HeldLayer[]; rows: number; length: number } | null = null;
  private readonly capacity: number;

  /** `maxLength`: the positions the cache will hold at most (the prompt and every new token). */
  constructor(
    private readonly model: GPTModel,
    maxLength: number,
  ) {
    this.capacity = Math.min(maxLength, model.cfg.contextLength);
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
    const { embDim: c, nHeads } = this.model.cfg;
    const b = ids.length;
    if (ids.some((row) => row.length !== 1)) throw new Error("NativeDecoder: one new token a row");
    const past = cache.length;
    if (past + 1 > this.model.cfg.contextLength) throw new Error(`NativeDecoder: ${past} cached + 1 new token exceed the context length ${this.model.cfg.contextLength}`);
    if (past > 0 && cache.batchSize !== b) throw new Error(`NativeDecoder: ${b} rows fed to a KV cache holding ${cache.batchSize}`);
    const o = this.ops;
    if (this.held !== null && (this.held.rows !== b || this.held.length !== past)) this.release(cache); // the cache moved on without us
    if (past + 1 > this.capacity) this.release(cache); // no room left: the cache's own way
    if (this.held === null && past + 1 <= this.capacity) this.hold(cache, b);
    const held = this.held;
    const logits = tf.tidy(() => {
      const idx = tf.tensor1d(ids.map((row) => row[0]), "int32"); // (B,)
      const rowPositions = cache.positions(1); // (B, 1) in a left-padded batch, else null: every row at `past`
      const pos = rowPositions ? tf.gather(this.posEmb, rowPositions.reshape([-1])) : tf.gather(this.posEmb, tf.tensor1d([past], "int32")); // (B, C) or (1, C)
      let x = o.add(this.model.tables.embed(idx), pos); // (B, C)
      const n = past + 1; // keys each query sees
      // held buffers: the new token's rows in them, and a bias that gives the positions after it no weight
      const writeRows = held === null ? null : this.tokenRows(b, nHeads, past); // (B·nHeads,)
      const padBias = held === null ? cache.padBias(n) : this.heldBias(cache, b, n); // (B, 1, 1, n or capacity) or null
      const headDim = c / nHeads;
      const scale = o.scalar(Math.sqrt(headDim));
      this.blocks.forEach((w, i) => {
        const layer = cache.layer(i);
        // attention: queries, keys and values (B, 3C) from one product; (B, 3C) is (B, 3·nHeads, 1, headDim) in memory
        const qkv = layer.qkvWeights({ weights: [w.query.weight, w.key.weight, w.value.weight], biases: biasesOf([w.query, w.key, w.value]) });
        let y = o.matMul2d(this.layerNorm(x, w.norm1), qkv.w); // (B, C) @ (C, 3C) -> (B, 3C)
        if (qkv.b !== null) y = o.add(y, qkv.b);
        const [q, k, v] = o.split(o.reshape(y, [b, 3 * nHeads, 1, headDim]), 3, 1); // 3 × (B, nHeads, 1, headDim)
        let all: { keys: tf.Tensor4D; values: tf.Tensor4D };
        if (held !== null && writeRows !== null) {
          const h = held.layers[i];
          o.inplaceUpdate(h.keyRows, writeRows, o.reshape(k, [b * nHeads, headDim])); // position `past` of every row and head
          o.inplaceUpdate(h.valueRows, writeRows, o.reshape(v, [b * nHeads, headDim]));
          all = { keys: h.keys, values: h.values }; // (B, nHeads, capacity, headDim)
        } else {
          all = layer.append(k as tf.Tensor4D, v as tf.Tensor4D, (old, fresh) => o.concat([old, fresh], 2)); // (B, nHeads, n, headDim)
        }
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
    if (held !== null) held.length = cache.length;
    return logits;
  }

  /** Take every layer's keys and values out of `cache` into buffers of `capacity` positions (the rest zeros). */
  private hold(cache: KVCache, b: number): void {
    const { nLayers } = this.model.cfg;
    const layers: HeldLayer[] = [];
    for (let i = 0; i < nLayers; i++) {
      const kv = cache.layer(i).contents();
      if (kv === null) {
        tf.dispose(layers.flatMap((l) => [l.keys, l.values, l.keyRows, l.valueRows]));
        return; // nothing cached yet: the cache's own way
      }
      const widen = (x: tf.Tensor4D) =>
        tf.tidy(() => {
          const [rows, heads, n, hd] = x.shape;
          // a fresh buffer of its own (the cache's tensor is not written): ConcatV2 allocates its output
          return this.ops.concat([x, tf.zeros([rows, heads, this.capacity - n, hd])], 2) as tf.Tensor4D; // (B, nHeads, capacity, headDim)
        });
      const keys = tf.keep(widen(kv.keys));
      const values = tf.keep(widen(kv.values));
      const [rows, heads, , hd] = keys.shape;
      const keyRows = tf.keep(this.ops.reshape(keys, [rows * heads * this.capacity, hd]) as tf.Tensor2D);
      const valueRows = tf.keep(this.ops.reshape(values, [rows * heads * this.capacity, hd]) as tf.Tensor2D);
      layers.push({ keys, values, keyRows, valueRows });
    }
    this.held = { layers, rows: b, length: cache.length };
  }

  /** Give the held keys and values back to `cache` (its positions only), e.g. before rows leave it; idempotent. */
  release(cache: KVCache): void {
    if (this.held === null) return;
    const { layers, length } = this.held;
    layers.forEach((h, i) => {
      const [rows, heads, , hd] = h.keys.shape;
      const cut = (x: tf.Tensor4D) => x.slice([0, 0, 0, 0], [rows, heads, length, hd]); // (B, nHeads, length, headDim), a copy
      cache.layer(i).replace(cut(h.keys), cut(h.values));
      tf.dispose([h.keys, h.values, h.keyRows, h.valueRows]);
    });
    this.held = null;
  }

  /** The rows of the held buffers' (B·nHeads·capacity, headDim) view that position `past` of each row and head is. */
  private tokenRows(b: number, nHeads: number, past: number): tf.Tensor1D {
    const rows = new Int32Array(b * nHeads);
    for (let r = 0; r < b * nHeads; r++) rows[r] = r * this.capacity + past;
    return tf.tensor1d(rows, "int32");
  }

  /** (B, 1, 1, capacity): the cache's padding bias for the n positions written, PAD_BIAS for those after them. */
  private heldBias(cache: KVCache, b: number, n: number): tf.Tensor4D {
    const bias = new Float32Array(b * this.capacity);
    const pad = cache.padBias(n); // (B, 1, 1, n) or null
    const padValues = pad === null ? null : (pad.dataSync() as Float32Array);
    pad?.dispose();
    for (let r = 0; r < b; r++) {
      if (padValues !== null) bias.set(padValues.subarray(r * n, (r + 1) * n), r * this.capacity);
      bias.fill(PAD_BIAS, r * this.capacity + n, (r + 1) * this.capacity);
    }
    return tf.tensor4d(bias, [b, 1, 1, this.capacity]);
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

  /** Free the kept constants and any held buffers (the cache owns the side-by-side weights). */
  dispose(): void {
    if (this.held !== null) tf.dispose(this.held.layers.flatMap((l) => [l.keys, l.values, l.keyRows, l.valueRows]));
    this.held = null;
    this.ops.dispose();
  }
}

/** The three layers' biases, or null when they have none (GPT-2 has them; the book's config leaves them out). */
function biasesOf(layers: Linear[]): tf.Tensor1D[] | null {
  const biases = layers.map((l) => l.bias);
  return biases.every((bias): bias is tf.Variable => bias !== null) ? (biases as tf.Tensor1D[]) : null;
}
