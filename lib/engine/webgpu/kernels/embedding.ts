/**
 * The token and position embeddings (lib/model/gpt.ts's first line: wte[ids] + wpe[positions]) and
 * their gradients.
 *
 *   forward   out[n, c] = wpe[pos[n], c] + wte[ids[n], c]   (one dispatch per block of wte's rows: a table
 *             past the device's binding limit is split by vocabulary rows; `first` writes, the rest add)
 *   dwte      dwte[tok, c] = Σ_{n: ids[n] = tok} dout[n, c], one workgroup per distinct token (the host
 *             lists them and their rows: no atomics, the same sum order every time)
 *   dwpe      dwpe[t, c] = Σ_b dout[b·T + t, c], for the training batch's positions 0 … T-1
 *
 * ids, positions and the token lists are u32 in the metadata buffer; tables are (rows, C) at offsets.
 */
import { GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At, Buf } from "../runtime";
import { FLAT_WORKGROUP, ROW_THREADS, VALUE_MAIN, grid2d } from "./wgsl";

const FORWARD = /* wgsl */ `
struct Params { N: u32, C: u32, idsOff: u32, posOff: u32, wteOff: u32, start: u32, count: u32, wpeOff: u32, outOff: u32, first: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Meta: array<u32>;
@group(0) @binding(2) var<storage, read> Wte: array<f32>;
@group(0) @binding(3) var<storage, read> Wpe: array<f32>;
@group(0) @binding(4) var<storage, read_write> Out: array<f32>;
${VALUE_MAIN}
  if (i >= P.N * P.C) { return; }
  let n = i / P.C;
  let c = i % P.C;
  var v = 0.0;
  if (P.first != 0u) { v = Wpe[P.wpeOff + Meta[P.posOff + n] * P.C + c]; } else { v = Out[P.outOff + i]; }
  let id = Meta[P.idsOff + n];
  if (id >= P.start && id < P.start + P.count) { v += Wte[P.wteOff + (id - P.start) * P.C + c]; }
  Out[P.outOff + i] = v;
}`;

const TOKEN_GRAD = /* wgsl */ `
struct Params { C: u32, count: u32, listOff: u32, rowsOff: u32, dOff: u32, gOff: u32, start: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> Meta: array<u32>;
@group(0) @binding(2) var<storage, read> D: array<f32>;
@group(0) @binding(3) var<storage, read_write> G: array<f32>;
@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let u = ${FLAT_WORKGROUP};
  if (u >= P.count) { return; }
  // list entry u: (token, first, end) into the row list
  let tok = Meta[P.listOff + 3u * u];
  let first = Meta[P.listOff + 3u * u + 1u];
  let end = Meta[P.listOff + 3u * u + 2u];
  for (var c = lid.x; c < P.C; c += ${ROW_THREADS}u) {
    var s = 0.0;
    for (var r = first; r < end; r++) { s += D[P.dOff + Meta[P.rowsOff + r] * P.C + c]; }
    G[P.gOff + (tok - P.start) * P.C + c] = s;
  }
}`;

const POSITION_GRAD = /* wgsl */ `
struct Params { B: u32, T: u32, C: u32, dOff: u32, gOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> D: array<f32>;
@group(0) @binding(2) var<storage, read_write> G: array<f32>;
${VALUE_MAIN}
  if (i >= P.T * P.C) { return; }
  var s = 0.0;
  for (var b = 0u; b < P.B; b++) { s += D[P.dOff + b * P.T * P.C + i]; }
  G[P.gOff + i] = s;
}`;

/** One block of the token table: its rows [start, start + count) sit at `table`. */
export interface TableBlock {
  table: At;
  start: number;
  count: number;
}

/** out (N, C) = wpe[pos] + wte[ids], the wte blocks one dispatch each. ids at meta+idsOff, positions at meta+posOff. */
export function embeddingForward(
  rt: GpuRuntime, rec: Recorder, N: number, C: number,
  meta: Buf, idsOff: number, posOff: number, blocks: TableBlock[], wpe: At, out: At,
): void {
  const k = rt.kernel({ key: "embedding-forward", code: FORWARD, bindings: ["read", "read", "read", "write"] });
  blocks.forEach((b, i) => {
    rec.dispatch(k, [meta, b.table.buf, wpe.buf, out.buf], [N, C, idsOff, posOff, b.table.offset, b.start, b.count, wpe.offset, out.offset, i === 0 ? 1 : 0], grid2d(Math.ceil((N * C) / ROW_THREADS)));
  });
}

/**
 * dwte rows of the `count` distinct tokens listed at meta+listOff ((token, first, end) triplets into the
 * row list at meta+rowsOff), all inside `block` (the caller groups them by block). Other rows are untouched:
 * the caller clears the table's gradient first.
 */
export function tokenEmbeddingGrad(
  rt: GpuRuntime, rec: Recorder, C: number, meta: Buf, listOff: number, count: number, rowsOff: number,
  dOut: At, block: TableBlock,
): void {
  const k = rt.kernel({ key: "embedding-token-grad", code: TOKEN_GRAD, bindings: ["read", "read", "write"] });
  rec.dispatch(k, [meta, dOut.buf, block.table.buf], [C, count, listOff, rowsOff, dOut.offset, block.table.offset, block.start], grid2d(count));
}

/** dwpe rows 0 … T-1 = Σ over the batch of dout (B, T, C). */
export function positionEmbeddingGrad(rt: GpuRuntime, rec: Recorder, B: number, T: number, C: number, dOut: At, grad: At): void {
  const k = rt.kernel({ key: "embedding-position-grad", code: POSITION_GRAD, bindings: ["read", "write"] });
  rec.dispatch(k, [dOut.buf, grad.buf], [B, T, C, dOut.offset, grad.offset], grid2d(Math.ceil((T * C) / ROW_THREADS)));
}
