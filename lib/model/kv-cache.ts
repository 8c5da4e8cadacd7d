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
 */
import * as tf from "@tensorflow/tfjs";

/** One attention layer's share of the cache. */
export class LayerKVCache {
  /** keys and values of every cached position, (B, nHeads, past, headDim); null before the first token */
  private keys: tf.Tensor4D | null = null;
  private values: tf.Tensor4D | null = null;

  /**
   * Append the new tokens' keys and values (B, nHeads, t, headDim) and return all of them,
   * (B, nHeads, past + t, headDim). The result outlives the caller's tf.tidy: the cache owns it.
   */
  append(keys: tf.Tensor4D, values: tf.Tensor4D): { keys: tf.Tensor4D; values: tf.Tensor4D } {
    const allKeys = this.keys === null ? keys : tf.concat([this.keys, keys], 2); // (B, H, past, hd) ++ (B, H, t, hd) -> (B, H, past+t, hd)
    const allValues = this.values === null ? values : tf.concat([this.values, values], 2);
    this.dispose();
    this.keys = tf.keep(allKeys);
    this.values = tf.keep(allValues);
    return { keys: allKeys, values: allValues };
  }

  dispose(): void {
    this.keys?.dispose();
    this.values?.dispose();
    this.keys = null;
    this.values = null;
  }
}

/** Every layer's keys and values, and how many positions they cover. */
export class KVCache {
  private readonly layers: LayerKVCache[] = [];
  /** positions already cached: the next token fed sits at this position */
  length = 0;
  /** rows of the cached batch (0 while empty): a forward pass must feed as many */
  batchSize = 0;

  /** The cache of attention layer `i` (made on first use). */
  layer(i: number): LayerKVCache {
    while (this.layers.length <= i) this.layers.push(new LayerKVCache());
    return this.layers[i];
  }

  /** Called by the model once every layer has appended: `t` new positions of `batchSize` rows are cached. */
  advance(t: number, batchSize: number): void {
    this.length += t;
    this.batchSize = batchSize;
  }

  /** Free every cached tensor; the cache starts again at position 0. */
  reset(): void {
    for (const layer of this.layers) layer.dispose();
    this.length = 0;
    this.batchSize = 0;
  }
}
