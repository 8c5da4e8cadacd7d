/**
 * The key/value cache of the GPU path, the twin of lib/model/kv-cache.ts: per layer one buffer of
 * (B, Tmax, 3C), each position's q|k|v row as the layer's matmul wrote it (attention reads the k and v
 * columns; the q columns are the step's queries, written there too, so one matmul fills all three).
 *
 * `next` feeds a batch's new tokens through GPT-2 (forward.ts with the cache) and returns the logits of
 * each row's last position. Left padding (`setPadding`) gives each row its own positions and PAD_BIAS on
 * its padding keys, as the plain cache does; `keepRows` drops finished rows. It keeps the padding columns
 * the plain cache cuts off: their keys weigh exactly 0 either way, so the logits are the same.
 */
import { GpuRuntime } from "../../engine/webgpu/runtime";
import type { Buf } from "../../engine/webgpu/runtime";
import { record } from "../../engine/webgpu/recorder";
import type { GpuGPT } from "./index";
import { recordBlocks, recordFinalNorm } from "./forward";
import { recordLogits } from "./head-loss";

export class GpuKVCache {
  /** positions already cached: the next token fed sits at this position */
  length = 0;
  /** rows of the cached batch */
  batchSize = 0;
  /** padding columns at the start of each row, or null */
  padding: number[] | null = null;
  private layers: Buf[] = [];
  private tmax = 0;
  private readonly rt: GpuRuntime;

  /** `maxLength`: positions the cache will hold at most (prompt + new tokens), at most the context length. */
  constructor(private readonly gpu: GpuGPT, private readonly maxLength: number) {
    this.rt = gpu.rt;
  }

  setPadding(padding: number[]): void {
    if (this.length > 0) throw new Error("GpuKVCache.setPadding: the cache already holds positions");
    this.padding = padding.slice();
  }

  /** Buffers for B rows of `positions` (new ones when the batch grows; a longer cache copies row by row). */
  private async ensure(B: number, positions: number): Promise<void> {
    const C = this.gpu.model.cfg.embDim;
    if (this.layers.length > 0 && B <= this.batchSize && positions <= this.tmax) return;
    const tmax = Math.max(positions, Math.min(this.maxLength, this.gpu.model.cfg.contextLength));
    const fresh = this.gpu.model.cfg.nLayers;
    const layers = await this.rt.allocating(`a key/value cache of ${B} × ${tmax} positions`, () =>
      Array.from({ length: fresh }, (_, l) => this.rt.buffer(B * tmax * 3 * C * 4, `kv cache layer ${l}`)),
    );
    if (this.length > 0) {
      const rec = record(this.rt);
      layers.forEach((to, l) => {
        for (let b = 0; b < this.batchSize; b++) rec.copy(this.layers[l].buffer, b * this.tmax * 3 * C * 4, to.buffer, b * tmax * 3 * C * 4, this.length * 3 * C * 4);
      });
      await rec.submit();
    }
    this.release(); // after the copies were submitted: WebGPU frees a buffer once the work that reads it is done
    this.layers = layers;
    this.tmax = tmax;
  }

  /** Feed ids (B, t), the tokens after the cached ones; the logits (B, V) of each row's last position. */
  async next(ids: number[][]): Promise<Float32Array> {
    const g = this.gpu;
    await g.update();
    const cfg = g.model.cfg;
    const [B, T] = [ids.length, ids[0].length];
    if (this.length > 0 && B !== this.batchSize) throw new Error(`GpuKVCache: ${B} rows fed to a cache of ${this.batchSize}`);
    await this.ensure(B, this.length + T);
    this.batchSize = B;
    const keys = this.length + T;
    const acts = await g.inferenceActivations({ N: B * T, att: B * cfg.nHeads * T * keys, K: B, R: B });
    const errors = this.rt.errors.length;
    const cache = { layers: this.layers, Tmax: this.tmax, past: this.length, padded: this.padding?.some((p) => p > 0) ?? false };
    const p = g.pass({ ids: ids.flat(), B, T, vocabSize: cfg.vocabSize, past: this.length, pads: this.padding ?? undefined }, acts, cache);
    recordBlocks(p);
    recordFinalNorm(p, B, p.meta.last);
    recordLogits(p, B);
    await p.rec.submit();
    this.length += T;
    const logits = await this.rt.readF32(acts.logits, 0, B * cfg.vocabSize, T > 1 ? "prompt" : "token");
    this.rt.throwIfErrors(errors, "generating on the GPU path");
    return logits;
  }

  /** Keep only the batch rows `rows` (indices into the current batch, in order). */
  async keepRows(rows: number[]): Promise<void> {
    const C = this.gpu.model.cfg.embDim;
    const layers = await this.rt.allocating("the key/value cache", () =>
      this.layers.map((_, l) => this.rt.buffer(Math.max(1, rows.length) * this.tmax * 3 * C * 4, `kv cache layer ${l}`)),
    );
    const rec = record(this.rt);
    const row = this.tmax * 3 * C * 4;
    layers.forEach((to, l) => rows.forEach((b, i) => rec.copy(this.layers[l].buffer, b * row, to.buffer, i * row, this.length * 3 * C * 4)));
    await rec.submit();
    this.release();
    this.layers = layers;
    this.padding = this.padding === null ? null : rows.map((b) => (this.padding as number[])[b]);
    this.batchSize = rows.length;
  }

  private release(): void {
    for (const b of this.layers) this.rt.destroy(b);
    this.layers = [];
  }

  /** Free every cached position; the cache starts again at position 0. */
  reset(): void {
    this.release();
    this.length = 0;
    this.batchSize = 0;
    this.padding = null;
    this.tmax = 0;
  }
}
