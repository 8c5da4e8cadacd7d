/**
 * The GPU step's activations: a buffer each (WebGPU forbids reading and writing one buffer in a dispatch),
 * sized for a capacity of B rows × T columns (× Tk keys) and grown when a batch needs more.
 *
 * Training keeps each layer's own (the backward pass reads them); inference (evaluation, generation)
 * reuses one set for every layer, with the residual stream in two buffers: a layer reads A and writes the
 * attention's sum into B, then the feed-forward's into A again.
 *
 * Per layer, N = B·T tokens: resIn (N, C) the layer's input, resMid (N, C) after attention, ln1 / ln2
 * (N, C) and their stats (N, 2), qkv (N, 3C), att (B·H, T, Tk) the attention weights, ctx (N, C) the
 * heads' outputs side by side, fch (N, 4C) before GELU and fcg (N, 4C) after. The head works on K kept
 * rows: xk (K, C) gathered, xf (K, C) normed, stats, logits of R rows at a time (R, V), losses (K).
 */
import { GpuRuntime } from "../../engine/webgpu/runtime";
import type { Buf } from "../../engine/webgpu/runtime";
import type { GPTConfig } from "../config";

export interface Capacity {
  /** rows × columns: tokens of the batch */
  N: number;
  /** attention weights: batch × heads × queries × keys */
  att: number;
  /** kept rows the head sees at once */
  K: number;
  /** rows of logits at once */
  R: number;
}

const PER_LAYER = ["resMid", "ln1", "ln1s", "qkv", "att", "ctx", "ln2", "ln2s", "fch", "fcg"] as const;
type LayerKind = (typeof PER_LAYER)[number];

export class Activations {
  readonly layers: Record<LayerKind, Buf>[] = [];
  /** the residual stream's inputs to each layer; res[L] feeds the head (training: L + 1 buffers; inference: 1) */
  readonly res: Buf[] = [];
  readonly xk: Buf;
  readonly xf: Buf;
  readonly xfs: Buf;
  readonly logits: Buf;
  readonly losses: Buf;
  /** the step's loss (and, for the guard, whatever is read with it) */
  readonly loss: Buf;
  private readonly all: Buf[] = [];

  constructor(private readonly rt: GpuRuntime, cfg: GPTConfig, readonly cap: Capacity, readonly training: boolean) {
    const { embDim: C, nLayers: L } = cfg;
    const n = cap.N;
    const sizes: Record<LayerKind, number> = {
      resMid: n * C, ln1: n * C, ln1s: n * 2, qkv: n * 3 * C, att: cap.att, ctx: n * C, ln2: n * C, ln2s: n * 2, fch: n * 4 * C, fcg: n * 4 * C,
    };
    const make = (elements: number, label: string) => {
      const b = rt.buffer(elements * 4, label);
      this.all.push(b);
      return b;
    };
    for (let l = 0; l < (training ? L : 1); l++) {
      const layer = {} as Record<LayerKind, Buf>;
      for (const k of PER_LAYER) layer[k] = make(sizes[k], `layer ${l} ${k}`);
      this.layers.push(layer);
    }
    for (let l = 0; l <= (training ? L : 0); l++) this.res.push(make(n * C, `residual ${l}`));
    this.xk = make(cap.K * C, "head input");
    this.xf = make(cap.K * C, "final norm");
    this.xfs = make(cap.K * 2, "final norm stats");
    this.logits = make(cap.R * cfg.vocabSize, "logits");
    this.losses = make(cap.K, "losses");
    this.loss = make(4, "loss");
  }

  /** Layer l's buffers (inference: the one shared set). */
  layer(l: number): Record<LayerKind, Buf> {
    return this.layers[this.training ? l : 0];
  }

  /** The residual stream into layer l (l = L: into the head). Inference: the A buffer of the pair. */
  resIn(l: number): Buf {
    return this.res[this.training ? l : 0];
  }

  /** After layer l's attention. */
  resMid(l: number): Buf {
    return this.layer(l).resMid;
  }

  /** True when a batch of this capacity fits. */
  fits(need: Capacity): boolean {
    return need.N <= this.cap.N && need.att <= this.cap.att && need.K <= this.cap.K && need.R <= this.cap.R;
  }

  bytes(): number {
    return this.all.reduce((a, b) => a + b.bytes, 0);
  }

  dispose(): void {
    for (const b of this.all) this.rt.destroy(b);
    this.all.length = 0;
  }
}

/** A capacity at least `need`, with a quarter more room (in multiples of 64), so slightly larger batches reuse it. */
export function roundUp(need: Capacity): Capacity {
  const up = (x: number) => Math.max(64, Math.ceil((x * 1.25) / 64) * 64);
  return { N: up(need.N), att: up(need.att), K: up(need.K), R: need.R };
}
