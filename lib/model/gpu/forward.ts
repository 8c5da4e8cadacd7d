/**
 * GPT-2's forward pass on the course's WebGPU kernels: lib/model/gpt.ts's `hidden`, dispatch by dispatch.
 *
 *   x = wte[ids] + wpe[positions]                                  1 dispatch per vocabulary block
 *   per block:  a = LN1(x)                                          layernorm
 *               q|k|v = a @ Wqkv + bqkv                             1 matmul (C, 3C)
 *               w = causal softmax(q kᵀ / √d)  per head             1 batched matmul + 1 softmax
 *               x' = x + (w v) @ Wo + bo                            1 batched matmul + 1 matmul with the residual
 *               x'' = x' + GELU(LN2(x') @ W1 + b1) @ W2 + b2        layernorm + 2 matmuls (GELU, residual fused)
 *
 * 9 dispatches a layer. Heads are read and written in place through the matmul's batch strides: head h of
 * row b is columns h·d … h·d + d of the (N, 3C) q|k|v matrix and of the (N, C) context.
 *
 * With a key/value cache (generation) the new tokens' q|k|v rows go straight into the cache at positions
 * past … past + T - 1, and attention reads every cached key; left-padded rows give their padding keys
 * the plain path's PAD_BIAS (lib/model/kv-cache.ts).
 */
import type { GpuRuntime, Buf } from "../../engine/webgpu/runtime";
import type { Recorder } from "../../engine/webgpu/recorder";
import { embeddingForward } from "../../engine/webgpu/kernels/embedding";
import { layerNormForward } from "../../engine/webgpu/kernels/layernorm";
import { matmul } from "../../engine/webgpu/kernels/matmul";
import { attentionSoftmax } from "../../engine/webgpu/kernels/attention-softmax";
import { gatherRows } from "../../engine/webgpu/kernels/rows";
import type { GPTConfig } from "../config";
import { PAD_BIAS } from "../kv-cache";
import { LAYERNORM_EPS } from "../layernorm";
import type { Activations } from "./activations";
import type { Arenas } from "./arenas";
import type { Meta } from "./meta";

/** The GPU cache of keys and values: per layer (B, Tmax, 3C), the q|k|v rows of every position so far. */
export interface CacheView {
  layers: Buf[];
  Tmax: number;
  /** positions already cached: the batch's first column sits at this position */
  past: number;
  /** some row has left padding */
  padded: boolean;
}

/** What every recording function of one pass needs. */
export interface Pass {
  rt: GpuRuntime;
  rec: Recorder;
  cfg: GPTConfig;
  params: Arenas;
  acts: Activations;
  meta: Meta;
  metaBuf: Buf;
  /** batch rows and columns (new tokens per row) */
  B: number;
  T: number;
  cache?: CacheView;
}

/** Where layer l's q|k|v live for attention: the layer's own matrix, or the cache. */
export function qkvView(p: Pass, l: number): { buf: Buf; offset: number; batchStride: number; keys: number; past: number } {
  const C = p.cfg.embDim;
  if (p.cache === undefined) return { buf: p.acts.layer(l).qkv, offset: 0, batchStride: p.T * 3 * C, keys: p.T, past: 0 };
  const c = p.cache;
  return { buf: c.layers[l], offset: c.past * 3 * C, batchStride: c.Tmax * 3 * C, keys: c.past + p.T, past: c.past };
}

/** Record the embeddings and every block: the residual stream into the final norm ends in acts.resIn(L). */
export function recordBlocks(p: Pass): void {
  const { rt, rec, cfg, params, acts, meta } = p;
  const C = cfg.embDim;
  const N = p.B * p.T;
  const blocks = params.layout.blocks.map(([start, count], j) => ({ table: params.at(`wte.${j}`), start, count }));
  embeddingForward(rt, rec, N, C, p.metaBuf, meta.ids, meta.pos, blocks, params.at("wpe"), { buf: acts.resIn(0), offset: 0 });
  for (let l = 0; l < cfg.nLayers; l++) recordLayer(p, l);
}

function recordLayer(p: Pass, l: number): void {
  const { rt, rec, cfg, params, acts } = p;
  const { embDim: C, nHeads: H } = cfg;
  const d = C / H;
  const N = p.B * p.T;
  const L = acts.layer(l);
  const x = acts.resIn(l);
  const mid = acts.resMid(l);
  const arena = (name: string) => params.at(`h.${l}.${name}`);
  const ln1 = arena("ln1.scale");
  layerNormForward(rt, rec, { rows: N, C }, { buf: x, offset: 0 }, { buf: L.ln1, offset: 0 }, ln1.buf, ln1.offset, arena("ln1.shift").offset, { buf: L.ln1s, offset: 0 }, LAYERNORM_EPS);
  // q|k|v (N, 3C) = ln1 (N, C) @ Wqkv (C, 3C) + bqkv; with a cache, row b's T rows land at its positions past…
  const qkv = qkvView(p, l);
  const bias = cfg.qkvBias ? { bias: arena("qkv.b") } : {};
  // (one matmul over all N rows without a cache; one per row b into the cache, whose rows are Tmax apart)
  const rowsAtOnce = p.cache === undefined ? { M: N, outer: 1 } : { M: p.T, outer: p.B };
  matmul(rt, rec, { label: "qkv",
    ...rowsAtOnce, N: 3 * C, K: C, epilogue: cfg.qkvBias ? "bias" : "none", ...bias,
    a: { buf: L.ln1, offset: 0, ld: C, so: p.T * C }, b: { ...arena("qkv.w"), ld: 3 * C }, c: { buf: qkv.buf, offset: qkv.offset, ld: 3 * C, so: qkv.batchStride },
  });
  // scores (B·H, T, Tk) = q (T, d) @ kᵀ (d, Tk) / √d, per row b and head h
  const Tk = qkv.keys;
  const keysAt = qkv.offset - qkv.past * 3 * C; // position 0 of the keys
  matmul(rt, rec, { label: "scores",
    M: p.T, N: Tk, K: d, outer: p.B, inner: H, transB: true, alpha: 1 / Math.sqrt(d),
    a: { buf: qkv.buf, offset: qkv.offset, ld: 3 * C, so: qkv.batchStride, si: d },
    b: { buf: qkv.buf, offset: keysAt + C, ld: 3 * C, so: qkv.batchStride, si: d },
    c: { buf: L.att, offset: 0, ld: Tk, so: H * p.T * Tk, si: p.T * Tk },
  });
  const pad = p.cache?.padded ? { heads: H, bias: PAD_BIAS } : null;
  attentionSoftmax(rt, rec, { Z: p.B * H, Tq: p.T, Tk, past: qkv.past }, { buf: L.att, offset: 0 }, { buf: p.metaBuf, offset: p.meta.pads }, pad);
  // context (T, d) = weights (T, Tk) @ v (Tk, d), written as head h's columns of (N, C)
  matmul(rt, rec, { label: "context",
    M: p.T, N: d, K: Tk, outer: p.B, inner: H,
    a: { buf: L.att, offset: 0, ld: Tk, so: H * p.T * Tk, si: p.T * Tk },
    b: { buf: qkv.buf, offset: keysAt + 2 * C, ld: 3 * C, so: qkv.batchStride, si: d },
    c: { buf: L.ctx, offset: 0, ld: C, so: p.T * C, si: d },
  });
  // x' (N, C) = x + ctx @ Wo + bo
  matmul(rt, rec, { label: "proj",
    M: N, N: C, K: C, epilogue: "residual", bias: arena("proj.b"), x: { buf: x, offset: 0, ld: C },
    a: { buf: L.ctx, offset: 0, ld: C }, b: { ...arena("proj.w"), ld: C }, c: { buf: mid, offset: 0, ld: C },
  });
  const ln2 = arena("ln2.scale");
  layerNormForward(rt, rec, { rows: N, C }, { buf: mid, offset: 0 }, { buf: L.ln2, offset: 0 }, ln2.buf, ln2.offset, arena("ln2.shift").offset, { buf: L.ln2s, offset: 0 }, LAYERNORM_EPS);
  // fcg (N, 4C) = GELU(ln2 @ W1 + b1), keeping the pre-activation fch for the backward pass
  matmul(rt, rec, { label: "fc",
    M: N, N: 4 * C, K: C, epilogue: "gelu", bias: arena("fc.b"), x: { buf: L.fch, offset: 0, ld: 4 * C },
    a: { buf: L.ln2, offset: 0, ld: C }, b: { ...arena("fc.w"), ld: 4 * C }, c: { buf: L.fcg, offset: 0, ld: 4 * C },
  });
  // x'' (N, C) = x' + fcg @ W2 + b2
  matmul(rt, rec, { label: "fc2",
    M: N, N: C, K: 4 * C, epilogue: "residual", bias: arena("fc2.b"), x: { buf: mid, offset: 0, ld: C },
    a: { buf: L.fcg, offset: 0, ld: 4 * C }, b: { ...arena("fc2.w"), ld: C }, c: { buf: p.acts.resIn(l + 1), offset: 0, ld: C },
  });
}

/** Gather `rows` rows (indices at meta word `idxAt`) of the last residual stream and apply the final norm: acts.xk -> acts.xf. */
export function recordFinalNorm(p: Pass, rows: number, idxAt: number): void {
  const { rt, rec, cfg, params, acts } = p;
  const C = cfg.embDim;
  gatherRows(rt, rec, rows, C, { buf: acts.resIn(cfg.nLayers), offset: 0 }, { buf: p.metaBuf, offset: idxAt }, { buf: acts.xk, offset: 0 });
  const lnf = params.at("lnf.scale");
  layerNormForward(rt, rec, { rows, C }, { buf: acts.xk, offset: 0 }, { buf: acts.xf, offset: 0 }, lnf.buf, lnf.offset, params.at("lnf.shift").offset, { buf: acts.xfs, offset: 0 }, LAYERNORM_EPS);
}
