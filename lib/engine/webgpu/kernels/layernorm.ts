/**
 * Layer normalization over the last axis, forward and backward, as lib/model/layernorm.ts computes it
 * (biased variance, eps inside the square root):
 *
 *   forward    y = (x - mean) · rstd · scale + shift,   rstd = 1 / sqrt(var + eps);  keeps (mean, rstd) per row
 *   backward   g = dy · scale;  dx = rstd · (g - mean(g) - x̂ · mean(g · x̂)),  x̂ = (x - mean) · rstd
 *              (added onto the residual stream's gradient when `accumulate`)
 *   params     dscale = Σ_rows dy · x̂,  dshift = Σ_rows dy
 *
 * X, Y, dY, dX: (rows, C) at element offsets; scale and shift: C values each at offsets in a parameter
 * arena; stats: (rows, 2) = (mean, rstd). The row kernels run one workgroup of 256 threads per row; the
 * parameter gradient runs 32 columns × 8 row slices per workgroup, summed in workgroup memory.
 */
import { f32bits, GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At, Buf } from "../runtime";
import { ROW_MAIN, ROW_THREADS, WORKGROUP_REDUCE, grid2d } from "./wgsl";

const FORWARD = /* wgsl */ `
struct Params { rows: u32, C: u32, xOff: u32, yOff: u32, scaleOff: u32, shiftOff: u32, statOff: u32, eps: f32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f32>;
@group(0) @binding(4) var<storage, read_write> S: array<f32>;
${WORKGROUP_REDUCE}
${ROW_MAIN}
  let x0 = P.xOff + row * P.C;
  var s = 0.0;
  for (var c = tid; c < P.C; c += ${ROW_THREADS}u) { s += X[x0 + c]; }
  let mean = reduceSum(s, tid) / f32(P.C);
  var q = 0.0;
  for (var c = tid; c < P.C; c += ${ROW_THREADS}u) { let d = X[x0 + c] - mean; q += d * d; }
  let rstd = 1.0 / sqrt(reduceSum(q, tid) / f32(P.C) + P.eps);
  let y0 = P.yOff + row * P.C;
  for (var c = tid; c < P.C; c += ${ROW_THREADS}u) {
    Y[y0 + c] = (X[x0 + c] - mean) * rstd * W[P.scaleOff + c] + W[P.shiftOff + c];
  }
  if (tid == 0u) { S[P.statOff + 2u * row] = mean; S[P.statOff + 2u * row + 1u] = rstd; }
}`;

const BACKWARD = /* wgsl */ `
struct Params { rows: u32, C: u32, dyOff: u32, xOff: u32, scaleOff: u32, statOff: u32, dxOff: u32, accumulate: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> W: array<f32>;
@group(0) @binding(4) var<storage, read> S: array<f32>;
@group(0) @binding(5) var<storage, read_write> DX: array<f32>;
${WORKGROUP_REDUCE}
${ROW_MAIN}
  let mean = S[P.statOff + 2u * row];
  let rstd = S[P.statOff + 2u * row + 1u];
  let d0 = P.dyOff + row * P.C;
  let x0 = P.xOff + row * P.C;
  var sg = 0.0;
  var sgx = 0.0;
  for (var c = tid; c < P.C; c += ${ROW_THREADS}u) {
    let g = DY[d0 + c] * W[P.scaleOff + c];
    sg += g;
    sgx += g * (X[x0 + c] - mean) * rstd;
  }
  let mg = reduceSum(sg, tid) / f32(P.C);
  let mgx = reduceSum(sgx, tid) / f32(P.C);
  let o0 = P.dxOff + row * P.C;
  for (var c = tid; c < P.C; c += ${ROW_THREADS}u) {
    let g = DY[d0 + c] * W[P.scaleOff + c];
    let xhat = (X[x0 + c] - mean) * rstd;
    let dx = rstd * (g - mg - xhat * mgx);
    if (P.accumulate != 0u) { DX[o0 + c] += dx; } else { DX[o0 + c] = dx; }
  }
}`;

const PARAM_GRAD = /* wgsl */ `
struct Params { rows: u32, C: u32, dyOff: u32, xOff: u32, statOff: u32, dScaleOff: u32, dShiftOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read> X: array<f32>;
@group(0) @binding(3) var<storage, read> S: array<f32>;
@group(0) @binding(4) var<storage, read_write> G: array<f32>;
var<workgroup> part: array<vec2<f32>, 256>;
@compute @workgroup_size(32, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * 32u + lid.x;
  var acc = vec2<f32>(0.0, 0.0);
  if (c < P.C) {
    for (var r = lid.y; r < P.rows; r += 8u) {
      let dy = DY[P.dyOff + r * P.C + c];
      let xhat = (X[P.xOff + r * P.C + c] - S[P.statOff + 2u * r]) * S[P.statOff + 2u * r + 1u];
      acc += vec2<f32>(dy * xhat, dy);
    }
  }
  part[lid.y * 32u + lid.x] = acc;
  workgroupBarrier();
  if (lid.y == 0u && c < P.C) {
    var t = vec2<f32>(0.0, 0.0);
    for (var k = 0u; k < 8u; k++) { t += part[k * 32u + lid.x]; }
    G[P.dScaleOff + c] = t.x;
    G[P.dShiftOff + c] = t.y;
  }
}`;

export interface LayerNormShape {
  rows: number;
  C: number;
}

/** Forward: y, and (mean, rstd) per row into `stats`. `scale`/`shift` in one buffer (a parameter arena). */
export function layerNormForward(
  rt: GpuRuntime, rec: Recorder, s: LayerNormShape,
  x: At, y: At, params: Buf, scaleOff: number, shiftOff: number, stats: At, eps: number,
): void {
  const k = rt.kernel({ key: "layernorm-forward", code: FORWARD, bindings: ["read", "write", "read", "write"] });
  rec.dispatch(k, [x.buf, y.buf, params, stats.buf], [s.rows, s.C, x.offset, y.offset, scaleOff, shiftOff, stats.offset, f32bits(eps)], grid2d(s.rows));
}

/** Backward to the input: dx (or dx += …, `accumulate`: the residual stream's gradient). */
export function layerNormBackward(
  rt: GpuRuntime, rec: Recorder, s: LayerNormShape,
  dy: At, x: At, params: Buf, scaleOff: number, stats: At, dx: At, accumulate: boolean,
): void {
  const k = rt.kernel({ key: "layernorm-backward", code: BACKWARD, bindings: ["read", "read", "read", "read", "write"] });
  rec.dispatch(k, [dy.buf, x.buf, params, stats.buf, dx.buf], [s.rows, s.C, dy.offset, x.offset, scaleOff, stats.offset, dx.offset, accumulate ? 1 : 0], grid2d(s.rows));
}

/** Backward to the parameters: dscale and dshift (written, not added) at offsets of `grads`. */
export function layerNormParamGrad(
  rt: GpuRuntime, rec: Recorder, s: LayerNormShape,
  dy: At, x: At, stats: At, grads: Buf, dScaleOff: number, dShiftOff: number,
): void {
  const k = rt.kernel({ key: "layernorm-param-grad", code: PARAM_GRAD, bindings: ["read", "read", "read", "write"] });
  rec.dispatch(k, [dy.buf, x.buf, stats.buf, grads], [s.rows, s.C, dy.offset, x.offset, stats.offset, dScaleOff, dShiftOff], [Math.ceil(s.C / 32)]);
}
