/**
 * Softmax cross-entropy over a block of logits, and its gradient in place: the loss of lib/train/loss.ts
 * and the gradient of lib/train/fused-loss.ts, for rows whose targets are all kept (the caller gathered
 * the kept rows; -100 rows never reach the head).
 *
 *   loss_r = logsumexp(x_r) - x_r[t_r]            (written to `losses` at row r)
 *   dx_r   = (softmax(x_r) - onehot(t_r)) · scale  (overwrites the logits, when `grad`)
 *
 * Logits: (rows, V) at an offset, row stride V; targets: u32 token ids at an offset of the metadata buffer.
 * One workgroup of 256 threads per row. `lossMean` then sums the per-row losses into one scalar.
 */
import { f32bits, GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At } from "../runtime";
import { ROW_MAIN, ROW_THREADS, WORKGROUP_REDUCE, grid2d } from "./wgsl";

const ROWS = /* wgsl */ `
struct Params { rows: u32, V: u32, lOff: u32, tOff: u32, outOff: u32, grad: u32, scale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> L: array<f32>;
@group(0) @binding(2) var<storage, read> Meta: array<u32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
${WORKGROUP_REDUCE}
${ROW_MAIN}
  let base = P.lOff + row * P.V;
  let t = Meta[P.tOff + row];
  var mx = -3.0e38;
  for (var j = tid; j < P.V; j += ${ROW_THREADS}u) { mx = max(mx, L[base + j]); }
  mx = reduceMax(mx, tid);
  var sum = 0.0;
  for (var j = tid; j < P.V; j += ${ROW_THREADS}u) { sum += exp(L[base + j] - mx); }
  sum = reduceSum(sum, tid);
  let xt = L[base + t];
  workgroupBarrier(); // every thread has read x[t] before any overwrites it
  if (tid == 0u) { Out[P.outOff + row] = mx + log(sum) - xt; }
  if (P.grad != 0u) {
    let inv = 1.0 / sum;
    for (var j = tid; j < P.V; j += ${ROW_THREADS}u) {
      var p = exp(L[base + j] - mx) * inv;
      if (j == t) { p -= 1.0; }
      L[base + j] = p * P.scale;
    }
  }
}`;

const MEAN = /* wgsl */ `
struct Params { n: u32, inOff: u32, outOff: u32, scale: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> In: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
${WORKGROUP_REDUCE}
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  var s = 0.0;
  for (var i = lid.x; i < P.n; i += ${ROW_THREADS}u) { s += In[P.inOff + i]; }
  s = reduceSum(s, lid.x);
  if (lid.x == 0u) { Out[P.outOff] = s * P.scale; }
}`;

/** Per-row losses of `rows` rows of `V` logits into `losses`; with `gradScale`, the logits become their gradient. */
export function crossEntropyRows(
  rt: GpuRuntime, rec: Recorder, rows: number, V: number,
  logits: At, targets: At, losses: At, gradScale: number | null,
): void {
  const k = rt.kernel({ key: "cross-entropy-rows", code: ROWS, bindings: ["write", "read", "write"] });
  rec.dispatch(k, [logits.buf, targets.buf, losses.buf], [rows, V, logits.offset, targets.offset, losses.offset, gradScale === null ? 0 : 1, f32bits(gradScale ?? 0)], grid2d(rows));
}

/** out = scale · Σ of n values (one workgroup): the batch's mean loss from its per-row losses. */
export function lossMean(rt: GpuRuntime, rec: Recorder, n: number, values: At, out: At, scale: number): void {
  const k = rt.kernel({ key: "loss-mean", code: MEAN, bindings: ["read", "write"] });
  rec.dispatch(k, [values.buf, out.buf], [n, values.offset, out.offset, f32bits(scale)], [1]);
}
