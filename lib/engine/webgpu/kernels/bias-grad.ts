/**
 * A bias's gradient: the column sums of the output gradient, db[c] = Σ_rows dy[r, c] (written, not
 * added). 32 columns × 8 row slices per workgroup, summed in workgroup memory.
 */
import { GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At } from "../runtime";

const CODE = /* wgsl */ `
struct Params { rows: u32, C: u32, dyOff: u32, outOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> DY: array<f32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(32, 8)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let c = wid.x * 32u + lid.x;
  var s = 0.0;
  if (c < P.C) {
    for (var r = lid.y; r < P.rows; r += 8u) { s += DY[P.dyOff + r * P.C + c]; }
  }
  part[lid.y * 32u + lid.x] = s;
  workgroupBarrier();
  if (lid.y == 0u && c < P.C) {
    var t = 0.0;
    for (var k = 0u; k < 8u; k++) { t += part[k * 32u + lid.x]; }
    G[P.outOff + c] = t;
  }
}`;

/** grad (C,) = Σ over `rows` rows of dy (rows, C). */
export function biasGrad(rt: GpuRuntime, rec: Recorder, rows: number, C: number, dy: At, grad: At): void {
  const k = rt.kernel({ key: "bias-grad", code: CODE, bindings: ["read", "write"] });
  rec.dispatch(k, [dy.buf, grad.buf], [rows, C, dy.offset, grad.offset], [Math.ceil(C / 32)]);
}
