/**
 * The softmax of causal attention, in place over the scores, and its backward pass, in place over the
 * gradient: the middle of attention between the two batched matmuls (scores = Q Kᵀ / √d and
 * context = weights V, lib/engine/webgpu/kernels/matmul.ts), as lib/model/attention.ts computes it.
 *
 * Scores: (Z, Tq, Tk) at an offset, Z = batch × heads. Query i sits at position past + i and sees keys
 * 0 … past + i (the book's mask: later keys get exactly zero weight). With left-padded batches (batched
 * generation) row b's first pad[b] keys are padding: their scores get the caller's bias (lib/model/kv-cache.ts's
 * PAD_BIAS, -1e9) added, as the plain path's `padBias`, so they weigh exactly 0 next to any real key.
 *
 *   forward    w_j = exp(s_j - max) / Σ exp(s - max)  for j ≤ past + i, else 0
 *   backward   ds_j = w_j · (dw_j - Σ_k w_k dw_k) · scale   (scale = 1/√d, the forward matmul's alpha)
 *
 * One workgroup of 256 threads per row (Z · Tq rows).
 */
import { f32bits, GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At } from "../runtime";
import { ROW_MAIN, ROW_THREADS, WORKGROUP_REDUCE, grid2d } from "./wgsl";

const FORWARD = /* wgsl */ `
struct Params { rows: u32, Tq: u32, Tk: u32, off: u32, past: u32, heads: u32, padOff: u32, hasPad: u32, padBias: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> S: array<f32>;
@group(0) @binding(2) var<storage, read> Meta: array<u32>;
${WORKGROUP_REDUCE}
${ROW_MAIN}
  let z = row / P.Tq;
  let last = P.past + row % P.Tq; // the last key this query sees
  var pad = 0u;
  if (P.hasPad != 0u) { pad = Meta[P.padOff + z / P.heads]; }
  let base = P.off + row * P.Tk;
  var mx = -3.0e38;
  for (var j = tid; j <= last; j += ${ROW_THREADS}u) {
    var s = S[base + j];
    if (j < pad) { s += P.padBias; }
    mx = max(mx, s);
  }
  mx = reduceMax(mx, tid);
  var sum = 0.0;
  for (var j = tid; j <= last; j += ${ROW_THREADS}u) {
    var s = S[base + j];
    if (j < pad) { s += P.padBias; }
    sum += exp(s - mx);
  }
  let inv = 1.0 / reduceSum(sum, tid);
  for (var j = tid; j < P.Tk; j += ${ROW_THREADS}u) {
    var w = 0.0;
    if (j <= last) {
      var s = S[base + j];
      if (j < pad) { s += P.padBias; }
      w = exp(s - mx) * inv;
    }
    S[base + j] = w;
  }
}`;

const BACKWARD = /* wgsl */ `
struct Params { rows: u32, Tq: u32, Tk: u32, wOff: u32, dOff: u32, past: u32, scale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> W: array<f32>;
@group(0) @binding(2) var<storage, read_write> D: array<f32>;
${WORKGROUP_REDUCE}
${ROW_MAIN}
  let last = P.past + row % P.Tq;
  let w0 = P.wOff + row * P.Tk;
  let d0 = P.dOff + row * P.Tk;
  var dot = 0.0;
  for (var j = tid; j <= last; j += ${ROW_THREADS}u) { dot += W[w0 + j] * D[d0 + j]; }
  dot = reduceSum(dot, tid);
  for (var j = tid; j < P.Tk; j += ${ROW_THREADS}u) {
    var g = 0.0;
    if (j <= last) { g = W[w0 + j] * (D[d0 + j] - dot) * P.scale; }
    D[d0 + j] = g;
  }
}`;

export interface SoftmaxShape {
  /** batch × heads */
  Z: number;
  Tq: number;
  Tk: number;
  /** positions before the first query (the key/value cache's length) */
  past: number;
}

/**
 * Causal softmax in place. `pad`: the padding keys per batch row (u32 at `meta`), the heads per batch row
 * and the bias their scores get; null when no row is padded.
 */
export function attentionSoftmax(rt: GpuRuntime, rec: Recorder, s: SoftmaxShape, scores: At, meta: At, pad: { heads: number; bias: number } | null): void {
  const k = rt.kernel({ key: "attention-softmax", code: FORWARD, bindings: ["write", "read"] });
  const rows = s.Z * s.Tq;
  rec.dispatch(k, [scores.buf, meta.buf], [rows, s.Tq, s.Tk, scores.offset, s.past, pad?.heads ?? 1, meta.offset, pad ? 1 : 0, f32bits(pad?.bias ?? 0)], grid2d(rows));
}

/** Backward in place: dScores (overwriting dWeights) = w · (dw - Σ w·dw) · scale. */
export function attentionSoftmaxBackward(rt: GpuRuntime, rec: Recorder, s: SoftmaxShape, weights: At, grad: At, scale: number): void {
  const k = rt.kernel({ key: "attention-softmax-backward", code: BACKWARD, bindings: ["read", "write"] });
  const rows = s.Z * s.Tq;
  rec.dispatch(k, [weights.buf, grad.buf], [rows, s.Tq, s.Tk, weights.offset, grad.offset, s.past, f32bits(scale)], grid2d(rows));
}
