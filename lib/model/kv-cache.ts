/**
 * A key/value cache for generation, as the book's bonus KV-cache code (chapter 4's
 * `03_kv-cache`): an optional argument of the model's own forward pass, not a second model.
 *
 * Attention is causal, so the keys and values of the tokens already seen never change.
 * While generating, `model.forward(ids, { cache })` feeds only the new tokens: each
 * attention layer appends their keys and values to its entry here and attends over all of
 * them, and the position embeddings start at `cache.length`. Without a cache the forward
 * pass is the book's, unchanged. The notebooks teach the plain loop; test/generate.test.ts
 * checks the cached one against it token for token.
 *
 * Batched generation of prompts of different lengths (generate/batch.ts) left-pads them to one length:
 * `setPadding` says how many columns each row starts with that are not text. Those rows then get their
 * own positions (`positions`), and every query gives the padding keys no weight (`padBias`); a finished row
 * leaves the batch (`keepRows`), and columns that are padding in every row left are cut off.
 */
import * as tf from "@tensorflow/tfjs";

/**
 * Added to the attention scores of padding keys: exp() of it is exactly 0 next to any real score, while
 * a padding query (whose every key is padding) still gets finite weights, not the NaN of all -inf.
 */
export const PAD_BIAS = -1e9;

/**
 * Whether cached generation computes a layer's queries, keys and values as one product with the three weights
 * side by side, (C, 3C), as GPT-2's own `c_attn` does (`COURSE_FUSED_QKV=0`: three products, the book's
 * layer). One token's (1, C) @ (C, C) products are too small to read their weights at the machine's bandwidth;
 * one (1, C) @ (C, 3C) reads the same bytes in one pass. The side-by-side weights are made once per generation,
 * kept in the cache and freed with it (`reset`); made again if a weight changed since.
 * By default on the native engine only, where it measured 6–13% faster generation on gpt2-small (libtensorflow's
 * small products run well below the bandwidth); on wasm, whose products run on the BLAS near it, splitting the
 * product's output cost more than it saved. `COURSE_FUSED_QKV=1` on every engine, `=0` on none.
 */
export const FUSED_QKV: { on: "native" | boolean } = {
  on: process.env.COURSE_FUSED_QKV === "0" ? false : process.env.COURSE_FUSED_QKV === "1" ? true : "native",
};

/** Whether FUSED_QKV applies on the current engine. */
export const fusedQKVNow = (): boolean => (FUSED_QKV.on === "native" ? tf.getBackend() === "tensorflow" : FUSED_QKV.on);

/** A layer's query, key and value weights (C, C) and biases (C,) or null, as the attention holds them. */
export interface QKVWeights {
  weights: tf.Tensor[];
  biases: tf.Tensor[] | null;
}

/** One attention layer's share of the cache. */
export class LayerKVCache {
  constructor(private readonly owner?: KVCache) {}

  /** the three weights side by side, (C, 3C), and biases, (3C,), with the data ids they were made from */
  private qkv: { w: tf.Tensor2D; b: tf.Tensor1D | null; from: tf.DataId[] } | null = null;

  /** `parts`' weights side by side, (C, 3C) (and biases, (3C,)): made on first use, reused while no weight changes. */
  qkvWeights(parts: QKVWeights): { w: tf.Tensor2D; b: tf.Tensor1D | null } {
    const from = [...parts.weights, ...(parts.biases ?? [])].map((t) => t.dataId);
    if (this.qkv === null || this.qkv.from.length !== from.length || this.qkv.from.some((id, i) => id !== from[i])) {
      this.disposeQKV();
      const w = tf.keep(tf.concat(parts.weights, 1) as tf.Tensor2D); // 3 × (C, C) -> (C, 3C): queries, keys, values
      const b = parts.biases === null ? null : tf.keep(tf.concat(parts.biases, 0) as tf.Tensor1D); // 3 × (C,) -> (3C,)
      this.qkv = { w, b, from };
    }
    return { w: this.qkv.w, b: this.qkv.b };
  }

  private disposeQKV(): void {
    this.qkv?.w.dispose();
    this.qkv?.b?.dispose();
    this.qkv = null;
  }

  /** keys and values of every cached position, (B, nHeads, past, headDim); null before the first token */
  private keys: tf.Tensor4D | null = null;
  private values: tf.Tensor4D | null = null;

  /**
   * Append the new tokens' keys and values (B, nHeads, t, headDim) and return all of them,
   * (B, nHeads, past + t, headDim). The result outlives the caller's tf.tidy: the cache owns it.
   * `join`: how two of them are joined along the positions (native-decode.ts passes libtensorflow's own op).
   */
  append(
    keys: tf.Tensor4D,
    values: tf.Tensor4D,
    join: (old: tf.Tensor4D, fresh: tf.Tensor4D) => tf.Tensor = (old, fresh) => tf.concat([old, fresh], 2),
  ): { keys: tf.Tensor4D; values: tf.Tensor4D } {
    const allKeys = (this.keys === null ? keys : join(this.keys, keys)) as tf.Tensor4D; // (B, H, past, hd) ++ (B, H, t, hd) -> (B, H, past+t, hd)
    const allValues = (this.values === null ? values : join(this.values, values)) as tf.Tensor4D;
    this.disposeKV();
    this.keys = tf.keep(allKeys);
    this.values = tf.keep(allValues);
    return { keys: allKeys, values: allValues };
  }

  /** The cached keys and values, (B, nHeads, past, headDim) each (still the cache's), or null before the first token. */
  contents(): { keys: tf.Tensor4D; values: tf.Tensor4D } | null {
    return this.keys === null || this.values === null ? null : { keys: this.keys, values: this.values };
  }

  /** Hold these keys and values instead (the cache takes them over and frees the ones it had). */
  replace(keys: tf.Tensor4D, values: tf.Tensor4D): void {
    this.disposeKV();
    this.keys = tf.keep(keys);
    this.values = tf.keep(values);
  }

  /** The padding bias of the whole cache for `n` keys, (B, 1, 1, n), or null when no row is padded. */
  padBias(n: number): tf.Tensor4D | null {
    return this.owner?.padBias(n) ?? null;
  }

  /** Keep only the batch rows `rows` and drop the first `cut` positions of every row. */
  keepRows(rows: number[], cut: number): void {
    if (this.keys === null || this.values === null) return;
    const pick = (x: tf.Tensor4D) =>
      tf.tidy(() => {
        const [, h, n, hd] = x.shape;
        const kept = rows.length === x.shape[0] && rows.every((r, i) => r === i) ? x : tf.gather(x, rows, 0); // (B', H, n, hd)
        return cut > 0 ? kept.slice([0, 0, cut, 0], [rows.length, h, n - cut, hd]) : tf.clone(kept); // (B', H, n - cut, hd)
      });
    const keys = pick(this.keys);
    const values = pick(this.values);
    this.disposeKV();
    this.keys = keys;
    this.values = values;
  }

  private disposeKV(): void {
    this.keys?.dispose();
    this.values?.dispose();
    this.keys = null;
    this.values = null;
  }

  /** Free the cached keys and values and the side-by-side weights. */
  dispose(): void {
    this.disposeKV();
    this.disposeQKV();
  }
}

/** Every layer's keys and values, and how many positions they cover. */
export class KVCache {
  private readonly layers: LayerKVCache[] = [];
  /** positions already cached: the next token fed sits at this position */
  length = 0;
  /** rows of the cached batch (0 while empty): a forward pass must feed as many */
  batchSize = 0;
  /** padding columns at the start of each row (left padding), or null: every row starts at column 0 */
  padding: number[] | null = null;

  /** The cache of attention layer `i` (made on first use). */
  layer(i: number): LayerKVCache {
    while (this.layers.length <= i) this.layers.push(new LayerKVCache(this));
    return this.layers[i];
  }

  /** Called by the model once every layer has appended: `t` new positions of `batchSize` rows are cached. */
  advance(t: number, batchSize: number): void {
    this.length += t;
    this.batchSize = batchSize;
  }

  /** Before the first forward pass: row b's first `padding[b]` columns are padding, not text. */
  setPadding(padding: number[]): void {
    if (this.length > 0) throw new Error("KVCache.setPadding: the cache already holds positions");
    this.padding = padding.slice();
  }

  /**
   * The positions of the next `t` columns, (B, t) int32, for a padded batch: column j of row b sits at
   * position j - padding[b] (padding columns clamp to 0; nothing attends to them); null without padding.
   */
  positions(t: number): tf.Tensor2D | null {
    const pad = this.padding;
    if (pad === null) return null;
    const ids = new Int32Array(pad.length * t);
    pad.forEach((p, b) => {
      for (let j = 0; j < t; j++) ids[b * t + j] = Math.max(0, this.length + j - p);
    });
    return tf.tensor2d(ids, [pad.length, t], "int32");
  }

  /** (B, 1, 1, n): PAD_BIAS for each row's padding keys, 0 for its text; null when no row has padding. */
  padBias(n: number): tf.Tensor4D | null {
    const pad = this.padding;
    if (pad === null || pad.every((p) => p === 0)) return null;
    const bias = new Float32Array(pad.length * n);
    pad.forEach((p, b) => bias.fill(PAD_BIAS, b * n, b * n + Math.min(p, n)));
    return tf.tensor4d(bias, [pad.length, 1, 1, n]);
  }

  /**
   * Keep only the batch rows `rows` (indices into the current batch, in order), e.g. once the others have
   * finished; the columns that are padding in every kept row are cut off, so no work is spent on them.
   */
  keepRows(rows: number[]): void {
    const old = this.padding ?? new Array<number>(this.batchSize).fill(0);
    const pad = rows.map((b) => old[b]);
    const cut = pad.length === 0 ? 0 : Math.min(...pad);
    for (const layer of this.layers) layer.keepRows(rows, cut);
    this.padding = pad.map((p) => p - cut);
    this.length -= cut;
    this.batchSize = rows.length;
  }

  /** Free every cached tensor; the cache starts again at position 0. */
  reset(): void {
    for (const layer of this.layers) layer.dispose();
    this.length = 0;
    this.batchSize = 0;
    this.padding = null;
  }
}
