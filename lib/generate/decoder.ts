/**
 * Generation's cached forward pass, behind one interface: feed the new tokens, get each row's next-token
 * logits (or, greedy, each row's pick). On TF.js it is lib/model/kv-cache.ts through `model.hidden(ids, { cache })`
 * and the head on the last position, and on the native engine the one-token steps through libtensorflow's ops
 * called directly (lib/model/native-decode.ts, the same cache); on the webgpu engine, the course's own kernels
 * (lib/model/gpu/kv-cache.ts), the same logits without a TF.js op per layer. generate.ts and batch.ts run either;
 * the book's plain loop (no cache) stays on TF.js.
 */
import * as tf from "@tensorflow/tfjs";
import type { GPTModel } from "../model/gpt";
import { gpuPathProblem, GpuGPT } from "../model/gpu";
import { GpuKVCache } from "../model/gpu/kv-cache";
import { KVCache } from "../model/kv-cache";
import { NativeDecoder, nativeDecodeProblem } from "../model/native-decode";

export interface CachedDecoder {
  /** positions cached so far */
  readonly length: number;
  /** before the first tokens: row b's first padding[b] columns are padding (left-padded batch) */
  setPadding(padding: number[]): void;
  /** ids (B, t): the tokens after the cached ones; the logits (B·V) of each row's last position */
  next(ids: number[][]): Promise<Float32Array>;
  /**
   * As `next`, but only each row's greedy pick, the first largest logit (torch.argmax's), found on the engine:
   * B ids read back instead of B × V logits (a batch of 8 on wasm: 0.20 ms against 0.78 for the logits and a
   * JavaScript loop). Optional: `greedyNext` falls back to `next`.
   */
  nextGreedy?(ids: number[][]): Promise<number[]>;
  /** keep only these rows of the batch (the others finished) */
  keepRows(rows: number[]): Promise<void>;
  /** forget every position */
  reset(): void;
}

class TfjsDecoder implements CachedDecoder {
  private readonly cache = new KVCache();
  /** the one-token steps on libtensorflow's ops called directly (native engine), made on first use */
  private native: NativeDecoder | null = null;
  constructor(
    private readonly model: GPTModel,
    private readonly maxLength: number,
  ) {}

  get length(): number {
    return this.cache.length;
  }

  setPadding(padding: number[]): void {
    this.cache.setPadding(padding);
  }

  async next(ids: number[][]): Promise<Float32Array> {
    return (await this.read(this.lastLogits(ids))) as Float32Array;
  }

  async nextGreedy(ids: number[][]): Promise<number[]> {
    const logits = this.lastLogits(ids);
    try {
      return Array.from(await this.read(tf.argMax(logits, -1))); // (B, V) -> (B,)
    } finally {
      logits.dispose();
    }
  }

  /** A tensor's values, read asynchronously (works on every engine); the tensor is freed. */
  private async read(t: tf.Tensor): Promise<tf.TypedArray> {
    try {
      return await t.data();
    } finally {
      t.dispose();
    }
  }

  /** ids (B, t) after the cached ones -> the logits of each row's last position, (B, V) */
  private lastLogits(ids: number[][]): tf.Tensor {
    const [b, t] = [ids.length, ids[0].length];
    if (t === 1 && this.cache.length > 0 && nativeDecodeProblem(this.model) === null) {
      this.native ??= new NativeDecoder(this.model, this.maxLength);
      return this.native.logits(ids, this.cache); // (B, V)
    }
    this.native?.release(this.cache); // the cache's keys and values back where the plain path keeps them
    return tf.tidy(() => {
      const x = tf.tensor2d(ids, [b, t], "int32"); // (B, t)
      const hidden = this.model.hidden(x, { cache: this.cache }); // (B, t, C)
      // the head on the last position only: for a small model the head (C x V) is most of the work
      return this.model.head(hidden.slice([0, t - 1, 0], [b, 1, this.model.cfg.embDim])).reshape([b, -1]); // (B, 1, C) -> (B, V)
    });
  }

  async keepRows(rows: number[]): Promise<void> {
    this.native?.release(this.cache);
    this.cache.keepRows(rows);
  }

  reset(): void {
    this.cache.reset();
    this.native?.dispose();
    this.native = null;
  }
}

/** Each row's greedy next token: the decoder's own `nextGreedy`, else the first largest of `next`'s logits. */
export async function greedyNext(dec: CachedDecoder, ids: number[][], vocab: number): Promise<number[]> {
  if (dec.nextGreedy !== undefined) return dec.nextGreedy(ids);
  const values = await dec.next(ids);
  return ids.map((_, b) => {
    const row = values.subarray(b * vocab, (b + 1) * vocab);
    let best = 0;
    for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i; // first max, as torch.argmax
    return best;
  });
}

/**
 * The decoder for `model`: the GPU path on the webgpu engine (unless COURSE_GPU_PATH=0), else TF.js.
 * `maxLength`: the positions the cache will hold at most (it sizes the GPU's buffers).
 */
export function cachedDecoder(model: GPTModel, maxLength: number): CachedDecoder {
  if (process.env.COURSE_GPU_PATH !== "0" && gpuPathProblem(model, false) === null) return new GpuKVCache(GpuGPT.for(model), maxLength);
  return new TfjsDecoder(model, maxLength);
}
