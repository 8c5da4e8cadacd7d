/**
 * LoRA, low-rank adaptation (the book's appendix E, used in exercise 7.4): a frozen linear layer
 * plus a trainable low-rank update,
 *
 *   y = x @ W + b + (alpha / rank) · (x @ A) @ B        A (in, rank), B (rank, out)
 *
 * A starts random and B at zero, so before the first step the model computes exactly what the
 * pretrained one did; training moves only A and B. A (in, out) layer then trains rank·(in + out)
 * values instead of in·out: for gpt2-medium with rank 16, 7,898,384 instead of 406,286,336.
 *
 * `LoRAAdapter` holds the A and B of every wrapped layer under `<layer>.lora.A` / `.lora.B`
 * (`blocks.0.att.wQuery.lora.A`, …); GPTModel.applyLoRA attaches one, and while it is attached
 * the model's base weights are frozen: no gradients, no optimizer moments.
 */
import * as tf from "@tensorflow/tfjs";
import { BOOK_SEED } from "../core/book";
import { ConfigError } from "../core/errors";
import { Rng } from "../core/random";
import type { GPTConfig } from "./config";
import type { ParamMap } from "./params";

export interface LoRAOptions {
  /** inner dimension r of A (in, r) and B (r, out) */
  rank: number;
  /** the update is scaled by alpha / rank */
  alpha: number;
  /** seeds A's initial values (default BOOK_SEED) */
  seed?: number;
  /** library names of the layers to wrap (default: every linear layer, output head included) */
  targets?: string[];
}

/**
 * `torch.nn.init.kaiming_uniform_(A, a=sqrt(5))` for a 2-D tensor, as the book initialises A:
 * uniform in ±gain·sqrt(3 / fan_in) with gain = sqrt(2 / (1 + a²)) = sqrt(1/3), so ±1/sqrt(fan_in).
 * torch takes fan_in of a 2-D tensor from its second axis, which for the book's A (in, rank) is
 * the rank: A's entries are uniform in ±1/sqrt(rank).
 */
export function kaimingUniformBound(shape: [number, number], a = Math.sqrt(5)): number {
  const fanIn = shape[1];
  const gain = Math.sqrt(2 / (1 + a * a));
  return gain * Math.sqrt(3 / fanIn);
}

/** The low-rank update of one linear layer: (alpha / rank) · x @ A @ B. */
export class LoRALayer {
  readonly A: tf.Variable;
  readonly B: tf.Variable;
  /** alpha / rank */
  readonly scale: number;

  constructor(inDim: number, outDim: number, rank: number, alpha: number, seed: number) {
    const bound = kaimingUniformBound([inDim, rank]);
    this.A = tf.tidy(() => tf.variable(tf.randomUniform([inDim, rank], -bound, bound, "float32", seed), true)); // (in, r)
    this.B = tf.tidy(() => tf.variable(tf.zeros([rank, outDim]), true)); // (r, out): zero, so the update starts at 0
    this.scale = alpha / rank;
  }

  /** (N, in) -> (N, r): the scaled down-projection (alpha / rank) · x @ A. */
  down(rows: tf.Tensor): tf.Tensor2D {
    return tf.mul(tf.matMul(rows, this.A), this.scale) as tf.Tensor2D; // (N, in) @ (in, r) -> (N, r)
  }

  /** (N, in) -> (N, out): the update added to the frozen layer's output. */
  apply(rows: tf.Tensor): tf.Tensor {
    return tf.matMul(this.down(rows), this.B); // (N, r) @ (r, out) -> (N, out)
  }

  /** The update as a weight, (alpha / rank) · A @ B (in, out): what merging adds to W. */
  delta(): tf.Tensor2D {
    return tf.tidy(() => tf.mul(tf.matMul(this.A, this.B), this.scale) as tf.Tensor2D);
  }
}

/** Every linear layer of a config, by library name, with its (in, out): what applyLoRA wraps. */
export function linearShapes(cfg: GPTConfig): Map<string, [number, number]> {
  const c = cfg.embDim;
  const out = new Map<string, [number, number]>();
  for (let i = 0; i < cfg.nLayers; i++) {
    for (const p of ["wQuery", "wKey", "wValue", "outProj"]) out.set(`blocks.${i}.att.${p}`, [c, c]);
    out.set(`blocks.${i}.ff.fc1`, [c, 4 * c]);
    out.set(`blocks.${i}.ff.fc2`, [4 * c, c]);
  }
  out.set("outHead", [c, cfg.vocabSize]);
  return out;
}

/** Trainable values LoRA of `rank` adds to a config (default: every linear layer), without building the model. */
export function countLoRAParams(cfg: GPTConfig, rank: number, targets?: string[]): number {
  const shapes = linearShapes(cfg);
  let n = 0;
  for (const name of targets ?? shapes.keys()) {
    const shape = shapes.get(name);
    if (shape === undefined) throw new ConfigError(`LoRA: no linear layer named "${name}" in this model`);
    n += rank * (shape[0] + shape[1]); // A (in, r) + B (r, out)
  }
  return n;
}

/** Throws a ConfigError naming the field when rank or alpha cannot work. */
export function validateLoRAOptions(opts: { rank: number; alpha: number }): void {
  if (!Number.isInteger(opts.rank) || opts.rank < 1) throw new ConfigError(`LoRA: rank must be an integer >= 1, got ${opts.rank}`);
  if (!Number.isFinite(opts.alpha) || opts.alpha <= 0) throw new ConfigError(`LoRA: alpha must be a number > 0, got ${opts.alpha}`);
}

/** The LoRA layers of a model: one per wrapped linear layer, and their A and B by name. */
export class LoRAAdapter {
  readonly rank: number;
  readonly alpha: number;
  /** wrapped layers, by library name, in the model's order */
  readonly layers = new Map<string, LoRALayer>();
  /** A and B of every layer: `<layer>.lora.A`, `<layer>.lora.B` (what the optimizer trains) */
  readonly params: ParamMap = new Map();

  /** Builds A and B for each of `linears` (library name -> layer), A seeded from `opts.seed`. */
  constructor(linears: Map<string, { weight: tf.Variable }>, opts: LoRAOptions) {
    validateLoRAOptions(opts);
    this.rank = opts.rank;
    this.alpha = opts.alpha;
    const rng = new Rng(opts.seed ?? BOOK_SEED);
    const targets = opts.targets ?? [...linears.keys()];
    for (const name of targets) {
      const linear = linears.get(name);
      if (linear === undefined) throw new ConfigError(`LoRA: no linear layer named "${name}" in this model`);
      const [inDim, outDim] = linear.weight.shape;
      const layer = new LoRALayer(inDim, outDim, opts.rank, opts.alpha, rng.seed());
      this.layers.set(name, layer);
      this.params.set(`${name}.lora.A`, layer.A);
      this.params.set(`${name}.lora.B`, layer.B);
    }
  }

  /** Library names of the wrapped layers. */
  get targets(): string[] {
    return [...this.layers.keys()];
  }

  numParams(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.params.values()) v.dispose();
    this.params.clear();
    this.layers.clear();
  }
}

/**
 * The book's three lines around `replace_linear_with_lora`: the trainable count before, after
 * freezing every weight (0), and once the LoRA layers are in, with thousands separators.
 */
export function formatLoRACounts(before: number, lora: number): string {
  const n = (x: number) => x.toLocaleString("en-US");
  return [
    `Total trainable parameters before: ${n(before)}`,
    `Total trainable parameters after: 0`,
    `Total trainable LoRA parameters: ${n(lora)}`,
  ].join("\n");
}
