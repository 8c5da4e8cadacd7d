/**
 * Row gathers: out[r, :] = in[idx[r], :], or zeros where idx[r] is -1 (a scatter's inverse map).
 * It picks the kept positions before the output head (and puts their gradients back, zeros elsewhere),
 * the last position of each row while generating, and the rows that stay in the key/value cache.
 * idx: i32 in the metadata buffer. One thread per value.
 */
import { GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At } from "../runtime";
import { ROW_THREADS, VALUE_MAIN, grid2d } from "./wgsl";

const GATHER = /* wgsl */ `
struct Params { rows: u32, C: u32, inOff: u32, outOff: u32, idxOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> In: array<f32>;
@group(0) @binding(2) var<storage, read> Meta: array<i32>;
@group(0) @binding(3) var<storage, read_write> Out: array<f32>;
${VALUE_MAIN}
  if (i >= P.rows * P.C) { return; }
  let r = i / P.C;
  let src = Meta[P.idxOff + r];
  var v = 0.0;
  if (src >= 0) { v = In[P.inOff + u32(src) * P.C + i % P.C]; }
  Out[P.outOff + i] = v;
}`;

/** out (rows, C) = in[idx] row by row (zeros for idx -1). */
export function gatherRows(rt: GpuRuntime, rec: Recorder, rows: number, C: number, input: At, idx: At, out: At): void {
  const k = rt.kernel({ key: "gather-rows", code: GATHER, bindings: ["read", "read", "write"] });
  rec.dispatch(k, [input.buf, idx.buf, out.buf], [rows, C, input.offset, out.offset, idx.offset], grid2d(Math.ceil((rows * C) / ROW_THREADS)));
}

const TRANSPOSE = /* wgsl */ `
struct Params { rows: u32, cols: u32, inOff: u32, outOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> In: array<f32>;
@group(0) @binding(2) var<storage, read_write> Out: array<f32>;
${VALUE_MAIN}
  if (i >= P.rows * P.cols) { return; }
  let r = i / P.cols;
  let c = i % P.cols;
  Out[P.outOff + c * P.rows + r] = In[P.inOff + i];
}`;

/** out (cols, rows) = inᵀ for in (rows, cols): the head's blocks between TF.js's (C, n) and the GPU path's (n, C). */
export function transposeRows(rt: GpuRuntime, rec: Recorder, rows: number, cols: number, input: At, out: At): void {
  const k = rt.kernel({ key: "transpose", code: TRANSPOSE, bindings: ["read", "write"] });
  rec.dispatch(k, [input.buf, out.buf], [rows, cols, input.offset, out.offset], grid2d(Math.ceil((rows * cols) / ROW_THREADS)));
}
