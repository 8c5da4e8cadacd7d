/**
 * The GPT-2 model, as the book's `GPTModel` (chapter 4): token and position
 * embeddings, a stack of transformer blocks, a final LayerNorm and a linear
 * head that turns each position's vector into one logit per vocabulary entry.
 */
import * as tf from "@tensorflow/tfjs";
import { BOOK_SEED } from "../core/book";
import { ConfigError, DataError } from "../core/errors";
import { Rng } from "../core/random";
import { TransformerBlock } from "./block";
import { GPTConfig, validateConfig } from "./config";
import { dropout } from "./dropout";
import type { KVCache } from "./kv-cache";
import { LayerNorm } from "./layernorm";
import { Linear } from "./linear";
import { LoRAAdapter, LoRAOptions, LoRALayer } from "./lora";
import { baseName, InitMode, ParamContext, ParamMap, normalParam } from "./params";
import { recomputedBlock } from "./recompute";
import { HEAD_WEIGHT, TOKEN_EMBEDDING, VocabTables } from "./vocab-table";

export interface GPTModelOptions {
  /** seeds the initial weights and the dropout masks (default BOOK_SEED, the book's `torch.manual_seed(123)`) */
  seed?: number;
  /** "random" (default) or "zeros" when weights will be loaded right after */
  init?: InitMode;
}

/** How one forward pass runs. */
export interface ForwardOptions {
  /** dropout on (the book's `model.train()`); default false (`model.eval()`) */
  training?: boolean;
  /**
   * Generation's key/value cache: the ids fed are the tokens after the cached ones (at
   * positions cache.length, cache.length + 1, …), and their keys and values join the cache.
   */
  cache?: KVCache;
}

export class GPTModel {
  readonly cfg: GPTConfig;
  /** every trainable tensor, by library name (`blocks.0.att.wQuery.weight`, …) */
  readonly params: ParamMap = new Map();
  /** draws the dropout seeds; part of the training state a checkpoint may save */
  rng: Rng;
  /**
   * Recompute each block's activations in the backward pass instead of keeping them (recompute.ts):
   * less memory, one more forward pass per training step. Off by default.
   */
  recomputeActivations = false;
  /** the token embedding and the output head (split into vocabulary blocks on a small-buffer GPU) */
  readonly tables: VocabTables;
  private readonly posEmb: tf.Variable;
  private readonly blocks: TransformerBlock[] = [];
  private readonly finalNorm: LayerNorm;
  private adapter: LoRAAdapter | null = null;
  /** things that live as long as the model and go with it (its copy on the GPU path) */
  private readonly companions = new Set<{ dispose(): void }>();

  constructor(cfg: GPTConfig, opts: GPTModelOptions = {}) {
    validateConfig(cfg);
    this.cfg = { ...cfg };
    this.rng = new Rng(opts.seed ?? BOOK_SEED);
    const ctx: ParamContext = { params: this.params, rng: this.rng, init: opts.init ?? "random" };
    // the token embedding (V, C) is drawn first and the head (C, V) last, as the book's GPTModel registers them
    const tables = (this.tables = new VocabTables(ctx, this.cfg));
    // GPT-2 initialises position embeddings smaller than token embeddings
    this.posEmb = normalParam(ctx, "posEmb.weight", [cfg.contextLength, cfg.embDim], 0.01); // (T, C)
    for (let i = 0; i < cfg.nLayers; i++) this.blocks.push(new TransformerBlock(ctx, `blocks.${i}`, this.cfg));
    this.finalNorm = new LayerNorm(ctx, "finalNorm", cfg.embDim);
    tables.makeHead(ctx); // a separate head, as in the book; loading GPT-2 copies wte into it (weight tying)
  }

  /**
   * Token ids (B, T) int32 -> logits (B, T, V). `training` (or `{ training }`) turns dropout
   * on (the book's `model.train()` / `model.eval()`); `{ cache }` continues from a KV cache.
   */
  forward(idx: tf.Tensor2D, opts: boolean | ForwardOptions = false): tf.Tensor3D {
    return tf.tidy(() => this.head(this.hidden(idx, opts)) as tf.Tensor3D); // (B, T, C) -> (B, T, V)
  }

  /** Token ids (B, T) -> the final-norm hidden states (B, T, C) that the head turns into logits. */
  hidden(idx: tf.Tensor2D, opts: boolean | ForwardOptions = false): tf.Tensor3D {
    const { training = false, cache }: ForwardOptions = typeof opts === "boolean" ? { training: opts } : opts;
    if (idx.rank !== 2) throw new DataError(`GPTModel.forward: token ids must be (batch, seq), got shape [${idx.shape}]`);
    const [b, t] = idx.shape;
    const past = cache?.length ?? 0;
    if (t > this.cfg.contextLength) {
      throw new DataError(`GPTModel.forward: sequence of ${t} tokens exceeds the context length ${this.cfg.contextLength}`);
    }
    if (past + t > this.cfg.contextLength) {
      throw new DataError(`GPTModel.forward: ${past} cached + ${t} new tokens exceed the context length ${this.cfg.contextLength}`);
    }
    if (t === 0) throw new DataError("GPTModel.forward: empty sequence (0 tokens)");
    if (cache?.padding && cache.padding.length !== b) {
      throw new DataError(`GPTModel.forward: ${b} rows fed to a KV cache padded for ${cache.padding.length}`);
    }
    if (cache !== undefined && past > 0 && cache.batchSize !== b) {
      throw new DataError(`GPTModel.forward: ${b} rows fed to a KV cache holding ${cache.batchSize}`);
    }
    const hidden = tf.tidy(() => {
      const ids = idx.dtype === "int32" ? idx : tf.cast(idx, "int32");
      const tokEmbeds = this.tables.embed(ids.reshape([-1])).reshape([b, t, this.cfg.embDim]); // (B*T,) -> (B*T, C) -> (B, T, C)
      // the tokens sit at positions past..past+T-1 (0..T-1 without a cache); in a left-padded batch
      // each row's own text starts at position 0, so the cache gives every row its positions
      const rowPositions = cache?.positions(t); // (B, T) or null
      const posEmbeds = rowPositions
        ? tf.gather(this.posEmb, rowPositions.reshape([-1])).reshape([b, t, this.cfg.embDim]) // (B*T,) -> (B*T, C) -> (B, T, C)
        : tf.gather(this.posEmb, tf.range(past, past + t, 1, "int32")); // (T, C)
      let x = tf.add(tokEmbeds, posEmbeds); // (B, T, C) + (T, C) or (B, T, C) -> (B, T, C)
      x = dropout(x, this.cfg.dropRate, training, this.rng);
      for (let i = 0; i < this.blocks.length; i++) {
        if (this.recomputeActivations && cache === undefined) x = recomputedBlock(this.blocks[i], x, training, this.rng, this.blockTrainables(i));
        else x = this.blocks[i].apply(x, training, this.rng, cache?.layer(i));
      }
      return this.finalNorm.apply(x) as tf.Tensor3D; // (B, T, C)
    });
    cache?.advance(t, b); // every layer has appended the T new positions
    return hidden;
  }

  /** The output head's weight (C, V): the head is `x @ headWeight`, without a bias. A ConfigError when `tables.split`. */
  get headWeight(): tf.Variable {
    return this.tables.headWeight();
  }

  /** The output head: (..., C) -> (..., V) logits. */
  head(x: tf.Tensor): tf.Tensor {
    return this.tables.logits(x);
  }

  /** The LoRA layer on the output head, when LoRA wraps it (the fused loss applies it itself). */
  get headLoRA(): LoRALayer | null {
    return this.tables.head?.lora ?? null;
  }

  /** Every linear layer, by library name (`blocks.0.att.wQuery`, …, `outHead`), in registration order. */
  linears(): Map<string, Linear> {
    const out = new Map<string, Linear>();
    this.blocks.forEach((b, i) => {
      for (const [n, l] of [["wQuery", b.att.wQuery], ["wKey", b.att.wKey], ["wValue", b.att.wValue], ["outProj", b.att.outProj]] as const) {
        out.set(`blocks.${i}.att.${n}`, l);
      }
      out.set(`blocks.${i}.ff.fc1`, b.ff.fc1);
      out.set(`blocks.${i}.ff.fc2`, b.ff.fc2);
    });
    if (this.tables.head !== null) out.set("outHead", this.tables.head);
    return out;
  }

  /** The attached LoRA adapter, or null. */
  get lora(): LoRAAdapter | null {
    return this.adapter;
  }

  /**
   * The book's `replace_linear_with_lora`: wrap every linear layer (or `opts.targets`) with a LoRA
   * update and freeze every base weight, so only the adapter's A and B train.
   */
  applyLoRA(opts: LoRAOptions): LoRAAdapter {
    if (this.adapter !== null) throw new DataError("GPTModel.applyLoRA: this model already has a LoRA adapter");
    if (this.tables.split) {
      throw new ConfigError("LoRA: this device's buffers are too small for the output head, which is split into vocabulary blocks; use another engine (COURSE_BACKEND=wasm|tensorflow)");
    }
    const linears = this.linears();
    const adapter = new LoRAAdapter(linears, opts);
    for (const [name, layer] of adapter.layers) (linears.get(name) as Linear).lora = layer;
    for (const v of this.params.values()) v.trainable = false; // frozen: tf.variableGrads skips them too
    this.adapter = adapter;
    return adapter;
  }

  /** Detach and free the adapter without merging it: the model is its base again, unfrozen. */
  removeLoRA(): void {
    if (this.adapter === null) return;
    for (const linear of this.linears().values()) linear.lora = null;
    this.adapter.dispose();
    this.adapter = null;
    for (const v of this.params.values()) v.trainable = true;
  }

  /** Fold the adapter into the weights (W += (alpha/r) · A @ B), detach and free it, unfreeze the model. */
  mergeLoRA(): void {
    if (this.adapter === null) return;
    const linears = this.linears();
    for (const [name, layer] of this.adapter.layers) {
      const linear = linears.get(name) as Linear;
      const merged = tf.tidy(() => tf.add(linear.weight, layer.delta()));
      linear.weight.assign(merged);
      merged.dispose();
    }
    this.removeLoRA();
  }

  /**
   * The values a parameter has in the model as it computes: with LoRA, a wrapped layer's weight
   * merged with its update (W + (alpha/r) · A @ B); otherwise the parameter itself. (in, out) row-major.
   */
  async mergedValues(name: string): Promise<Float32Array> {
    // a table split into vocabulary blocks is read whole (LoRA never wraps a split head; the embedding never)
    if (name === TOKEN_EMBEDDING || (name === HEAD_WEIGHT && this.tables.split)) return this.tables.values(name);
    const layer = this.adapter?.layers.get(name.replace(/\.weight$/, ""));
    if (!name.endsWith(".weight") || layer === undefined) return (await this.param(name).data()) as Float32Array;
    const merged = tf.tidy(() => tf.add(this.param(name), layer.delta()));
    const data = (await merged.data()) as Float32Array;
    merged.dispose();
    return data;
  }

  /** Block i's trainable variables (its parameters, or its LoRA A and B), for recomputedBlock. */
  private blockTrainables(i: number): tf.Variable[] {
    const prefix = `blocks.${i}.`;
    return [...this.trainableParams()].filter(([name, v]) => name.startsWith(prefix) && v.trainable).map(([, v]) => v);
  }

  /** What the optimizer trains: the LoRA adapter's A and B while one is attached, else every parameter. */
  trainableParams(): ParamMap {
    return this.adapter?.params ?? this.params;
  }

  /** Number of values the optimizer trains (the book's `sum(p.numel() for p in model.parameters() if p.requires_grad)`). */
  numTrainableParams(): number {
    return this.adapter?.numParams() ?? this.numParams();
  }

  /** The variable registered under `name`; throws naming it when there is none. */
  param(name: string): tf.Variable {
    const v = this.params.get(name);
    if (v === undefined) throw new Error(`GPTModel: no parameter named "${name}"`);
    return v;
  }

  /** Number of trainable values, the book's `sum(p.numel() for p in model.parameters())`. */
  numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  /**
   * The parameters' names as a checkpoint knows them: a table split into vocabulary blocks is one name
   * (`tokEmb.weight`), not its blocks. Read and set them with `values` / `setValues`.
   */
  paramNames(): string[] {
    return [...new Set([...this.params.keys()].map(baseName))];
  }

  /** A parameter's values (row-major), a split table's in its whole layout. */
  async values(name: string): Promise<Float32Array> {
    if (name === TOKEN_EMBEDDING || name === HEAD_WEIGHT) return this.tables.values(name);
    return (await this.param(name).data()) as Float32Array;
  }

  /** Set a parameter from row-major values of its whole shape (a split table's too). */
  setValues(name: string, data: Float32Array): void {
    if (name === TOKEN_EMBEDDING || name === HEAD_WEIGHT) return this.tables.setValues(name, data);
    const v = this.param(name);
    const t = tf.tensor(data, v.shape, "float32");
    v.assign(t);
    t.dispose();
  }

  /** Keep `companion` as long as the model, and dispose it with the model. */
  attach(companion: { dispose(): void }): void {
    this.companions.add(companion);
  }

  dispose(): void {
    for (const c of this.companions) c.dispose();
    this.companions.clear();
    this.adapter?.dispose();
    this.adapter = null;
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
  }
}

// the book's parameter counts live in param-count.ts; importable from here as before
export { countParams, formatParamSummary, paramSummary, printParamSummary } from "./param-count";
export type { ParamSummary } from "./param-count";
