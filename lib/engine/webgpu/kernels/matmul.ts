/**
 * Tiled, batched matrix multiplication with fused epilogues: every matmul of a GPT-2 step, forward and
 * backward, is one dispatch of this kernel.
 *
 *   C[z] (M, N) = alpha · op(A[z]) (M, K) @ op(B[z]) (K, N)   [+ bias (N,)]   epilogue   [+ beta · C[z]]
 *
 * op(A) is A (stored (M, K), row stride lda) or Aᵀ (stored (K, M)); op(B) is B (stored (K, N)) or Bᵀ
 * (stored (N, K)). The batch index z = zo · inner + zi picks each operand's offset through two strides,
 * so per-head attention reads its slices of the (N, 3C) query/key/value matrix in place, no transposes.
 *
 * Epilogues (fixed per pipeline):
 *   none         C = acc
 *   bias         C = acc + bias[n]
 *   residual     C = acc + bias[n] + X[m, n]          (a projection added to the residual stream)
 *   gelu         X[m, n] = acc + bias[n];  C = GELU(X[m, n])   (keeps the pre-activation for backward)
 *   geluGrad     C = acc · GELU'(X[m, n])            (the gradient through GELU, X the pre-activation)
 *
 * Workgroup: (BN / TN) × (BM / TM) = 256 threads compute a BM × BN tile of C, TM × TN values each, at
 * rows ty + i · BM/TM and columns tx + j · BN/TN (strided, so neighbouring threads read neighbouring
 * shared-memory words). Each step of the K loop stages a BM × BK slice of op(A) and a BK × BN slice of
 * op(B) in workgroup memory, each loaded so that neighbouring threads read neighbouring global words.
 * Grid: (⌈N / BN⌉, ⌈M / BM⌉, batch). Edges (M, N, K not multiples of the tile) load zeros.
 */
import { f32bits, GpuRuntime, Kernel } from "../runtime";
import { grid2d } from "./wgsl";
import { matmulSource, reduceSource, usesBias, usesX } from "./matmul-wgsl";
import type { Recorder } from "../recorder";
import type { Buf } from "../runtime";

// the epilogues and the tile shape are the WGSL generator's vocabulary; importable from here
export type { Epilogue, Tile } from "./matmul-wgsl";
import type { Epilogue, Tile } from "./matmul-wgsl";

export const TILES: Record<string, Tile> = {
  "128x128": { bm: 128, bn: 128, tm: 8, tn: 8, bk: 16 },
  "64x64": { bm: 64, bn: 64, tm: 4, tn: 4, bk: 16 },
  "32x32": { bm: 32, bn: 32, tm: 2, tn: 2, bk: 32 },
};

/** Where an operand lives: a buffer, an element offset, a row stride, and its two batch strides. */
export interface Operand {
  buf: Buf;
  offset: number;
  ld: number;
  /** element stride per outer / inner batch index (default 0: shared by the batch) */
  so?: number;
  si?: number;
}

export interface MatmulArgs {
  M: number;
  N: number;
  K: number;
  a: Operand;
  b: Operand;
  c: Operand;
  transA?: boolean;
  transB?: boolean;
  epilogue?: Epilogue;
  /** bias (N,) at offset, for bias / residual / gelu */
  bias?: { buf: Buf; offset: number };
  /** residual input, pre-activation output (gelu) or input (geluGrad), laid out like C */
  x?: Operand;
  alpha?: number;
  /** 1: add into C (gradient accumulation); 0 (default): overwrite */
  beta?: number;
  /** batch = outer × inner (default 1 × 1) */
  outer?: number;
  inner?: number;
  /** force a tile shape (tests); default: chosen from the output's size */
  tile?: string;
  /** slices of K (split-K, for small grids with a long K); default: chooseSplit */
  split?: number;
  /** what this matmul is, for the profiler's table (e.g. "fc2 dW") */
  label?: string;
}

/** Slices of K for split-K: enough workgroups for a large GPU when the tile grid alone is small and K long; 1 otherwise. */
export function chooseSplit(M: number, N: number, K: number, batch: number, tile: string): number {
  const t = TILES[tile];
  const tiles = Math.ceil(M / t.bm) * Math.ceil(N / t.bn) * batch;
  if (batch > 1 || tiles >= 256 || K < 1024) return 1;
  return Math.max(1, Math.min(8, Math.ceil(256 / tiles), Math.floor(K / 512)));
}

/** The tile for an output of M × N × batch: the largest that still gives the GPU enough workgroups. */
export function chooseTile(M: number, N: number, batch: number): string {
  const tiles = (t: Tile) => Math.ceil(M / t.bm) * Math.ceil(N / t.bn) * batch;
  if (tiles(TILES["128x128"]) >= 192) return "128x128";
  if (tiles(TILES["64x64"]) >= 96 || M > 32) return "64x64";
  return "32x32";
}

/** The compiled kernel of one variant (cached by the runtime). */
export function matmulKernel(rt: GpuRuntime, transA: boolean, transB: boolean, epilogue: Epilogue, tile: string): Kernel {
  const t = TILES[tile];
  const [hasBias, hasX] = [usesBias(epilogue), usesX(epilogue)];
  return rt.kernel({
    key: `matmul-${transA ? "T" : "N"}${transB ? "T" : "N"}-${epilogue}-${tile}`,
    code: matmulSource(transA, transB, epilogue, t),
    bindings: ["read", "read", "write", ...(hasBias ? (["read"] as const) : []), ...(hasX ? ([epilogue === "gelu" ? "write" : "read"] as const) : [])],
  });
}

/** Record one matmul (see the file comment). */
export function matmul(rt: GpuRuntime, rec: Recorder, args: MatmulArgs): void {
  const { M, N, K, a, b, c } = args;
  const epilogue = args.epilogue ?? "none";
  const outer = args.outer ?? 1;
  const inner = args.inner ?? 1;
  const tile = args.tile ?? chooseTile(M, N, outer * inner);
  const t = TILES[tile];
  const kernel = matmulKernel(rt, args.transA ?? false, args.transB ?? false, epilogue, tile);
  const x = usesX(epilogue) ? args.x : undefined;
  const bufs = [a.buf, b.buf, c.buf];
  if (usesBias(epilogue)) {
    if (!args.bias) throw new Error(`matmul: epilogue ${epilogue} needs a bias`);
    bufs.push(args.bias.buf);
  }
  if (usesX(epilogue)) {
    if (!x) throw new Error(`matmul: epilogue ${epilogue} needs x`);
    bufs.push(x.buf);
  }
  const label = `matmul ${args.label ?? ""} ${tile}`.replace("  ", " ");
  const split = args.split ?? chooseSplit(M, N, K, outer * inner, tile);
  if (split > 1) {
    // split-K: S slices of K, each into its own (M, N) partial of the runtime's scratch, then one pass sums them
    const kPer = Math.ceil(K / split / t.bk) * t.bk;
    const slices = Math.ceil(K / kPer);
    const part = rt.scratch(slices * M * N * 4);
    const plain = matmulKernel(rt, args.transA ?? false, args.transB ?? false, "none", tile);
    const words = [M, N, K, a.ld, b.ld, N, 0, 1, a.offset, 0, 0, b.offset, 0, 0, 0, M * N, 0, 0, 0, 0, 0, f32bits(1), f32bits(0), kPer, kPer];
    rec.dispatch(plain, [a.buf, b.buf, part], words, [Math.ceil(N / t.bn), Math.ceil(M / t.bm), slices], `${label} split ${slices}`);
    const reduce = rt.kernel({ key: `matmul-reduce-${epilogue}`, code: reduceSource(epilogue), bindings: ["read", "write", ...bufs.slice(3).map((_, i) => (i === bufs.length - 4 && epilogue === "gelu" ? "write" : "read") as "read" | "write")] });
    const rw = [M, N, slices, c.ld, c.offset, x?.ld ?? 0, x?.offset ?? 0, args.bias?.offset ?? 0, f32bits(args.alpha ?? 1), f32bits(args.beta ?? 0)];
    rec.dispatch(reduce, [part, c.buf, ...bufs.slice(3)], rw, grid2d(Math.ceil((M * N) / 256)), `matmul ${args.label ?? ""} split-K sum`);
    return;
  }
  const params = [
    M, N, K, a.ld, b.ld, c.ld, x?.ld ?? 0, inner,
    a.offset, a.so ?? 0, a.si ?? 0, b.offset, b.so ?? 0, b.si ?? 0, c.offset, c.so ?? 0,
    c.si ?? 0, x?.offset ?? 0, x?.so ?? 0, x?.si ?? 0, args.bias?.offset ?? 0, f32bits(args.alpha ?? 1), f32bits(args.beta ?? 0), K, 0,
  ];
  rec.dispatch(kernel, bufs, params, [Math.ceil(N / t.bn), Math.ceil(M / t.bm), outer * inner], label);
}
