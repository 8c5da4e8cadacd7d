/**
 * WGSL pieces shared by the row-wise kernels: the 2-D grid that lifts WebGPU's 65,535-workgroup limit per
 * dimension, and a workgroup reduction (sum or max) through workgroup memory.
 */
import { MAX_WORKGROUPS } from "../runtime";

/** Threads per workgroup of the row-wise kernels (one workgroup per row). */
export const ROW_THREADS = 256;

/** Workgroups for `n` rows (or blocks) as a 2-D grid; the kernel's index is `wid.y * 65535 + wid.x`. */
export function grid2d(n: number): [number, number] {
  return [Math.min(n, MAX_WORKGROUPS), Math.ceil(n / MAX_WORKGROUPS)];
}

/** WGSL: the flat workgroup index of a grid2d launch. */
export const FLAT_WORKGROUP = `(wid.y * ${MAX_WORKGROUPS}u + wid.x)`;

/**
 * WGSL: `reduceSum(v, tid)` and `reduceMax(v, tid)` over the ROW_THREADS threads of a workgroup; every
 * thread gets the result. Call from uniform control flow only (they hold barriers).
 */
export const WORKGROUP_REDUCE = `
var<workgroup> red: array<f32, ${ROW_THREADS}>;
fn reduceSum(v: f32, tid: u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] += red[tid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}
fn reduceMax(v: f32, tid: u32) -> f32 {
  red[tid] = v;
  workgroupBarrier();
  for (var s = ${ROW_THREADS / 2}u; s > 0u; s >>= 1u) {
    if (tid < s) { red[tid] = max(red[tid], red[tid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}`;

/** WGSL: true when a float is neither infinite nor NaN (from its exponent bits: compilers may fold `x != x`). */
export const IS_FINITE = `fn isFinite(x: f32) -> bool { return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u; }`;

/** WGSL: the entry point of a kernel with one workgroup per row (of P.rows): `row` and `tid` defined, spare workgroups gone. */
export const ROW_MAIN = `@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let row = ${FLAT_WORKGROUP};
  if (row >= P.rows) { return; }
  let tid = lid.x;`;

/** WGSL: the entry point of a kernel with one thread per value: `i`, the value's index (launched by grid2d over ⌈n / ROW_THREADS⌉). */
export const VALUE_MAIN = `@compute @workgroup_size(${ROW_THREADS})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let i = ${FLAT_WORKGROUP} * ${ROW_THREADS}u + lid.x;`;
