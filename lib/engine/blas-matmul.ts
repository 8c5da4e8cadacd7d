/**
 * A native BLAS matmul for the wasm backend, where the machine has one.
 *
 * XNNPACK compiled to WebAssembly multiplies at ~20 GFLOP/s a thread here; OpenBLAS, called
 * natively, at ~150 GFLOP/s on the same 2 cores (568x128 @ 128x50257: ~46 ms against
 * ~330 ms). The output head's matmuls dominate a training step of the small model, so this is
 * the biggest single lever for training on a CPU without tfjs-node.
 *
 * How: `koffi` (a foreign-function interface whose npm package ships prebuilt binaries, so
 * nothing is compiled at install) loads the system's BLAS and calls `cblas_sgemm` directly
 * on the wasm heap: tensors stay where wasm keeps them, nothing is copied, and the transposes
 * of the gradients are BLAS flags rather than extra passes.
 *
 * Which library: `COURSE_BLAS=<path or name>` if set (`COURSE_BLAS=0` turns this off), else the
 * first of OpenBLAS, BLIS, MKL or Apple's Accelerate that loads. Debian/Ubuntu:
 * `apt-get install libopenblas0`; macOS has Accelerate. Without one (or without koffi), wasm's
 * own kernel runs, and the engine's report says why.
 *
 * Anything this kernel does not handle (non-float32, batch shapes that broadcast other than
 * "equal" or "one side is a single matrix") goes to the kernel it replaced.
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelImpl, KernelPatch, patchKernel } from "./patch-kernel";
import type { WasmBackendLike } from "./wasm-guard";

/** C = alpha·op(A)·op(B) + beta·C, row-major; the arrays are views whose first element is the matrix's. */
type Sgemm = (
  order: number, transA: number, transB: number, m: number, n: number, k: number,
  alpha: number, a: Float32Array, lda: number, b: Float32Array, ldb: number,
  beta: number, c: Float32Array, ldc: number,
) => void;

const CBLAS_ROW_MAJOR = 101;
const CBLAS_NO_TRANS = 111;
const CBLAS_TRANS = 112;

/** Shared libraries tried in order when COURSE_BLAS is not set. */
const CANDIDATE_LIBRARIES: Record<string, string[]> = {
  linux: ["libopenblas.so.0", "libopenblas.so", "libblis.so.4", "libmkl_rt.so", "libmkl_rt.so.2"],
  darwin: [
    "/System/Library/Frameworks/Accelerate.framework/Accelerate",
    "libopenblas.dylib",
    "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
    "/usr/local/opt/openblas/lib/libopenblas.dylib",
  ],
  win32: ["libopenblas.dll", "openblas.dll", "mkl_rt.2.dll"],
};

export interface BlasInfo {
  /** The library loaded, e.g. "libopenblas.so.0"; null when none. */
  library: string | null;
  /** Why there is none (for the engine's report), or "" when one loaded. */
  reason: string;
}

/** y = alpha·op(A)·x + beta·y, row-major A (m, n). */
type Sgemv = (
  order: number, transA: number, m: number, n: number, alpha: number, a: Float32Array, lda: number,
  x: Float32Array, incx: number, beta: number, y: Float32Array, incy: number,
) => void;

let sgemm: Sgemm | null = null;
let sgemv: Sgemv | null = null;
/** OpenBLAS's thread count, where the library is OpenBLAS (others have no such call) */
let setThreads: ((n: number) => void) | null = null;
let getThreads: (() => number) | null = null;
let loaded: BlasInfo | null = null;

/**
 * Products of at most this many rows run on one OpenBLAS thread. On this project's 2-core machine OpenBLAS 0.3.21
 * with 2 threads took 1.8–2.7x as long as with 1 for 8 rows (a generation step of a batch: (8, 768) @ (768, 50257)
 * 26.8 ms against 14.1, (8, 128) @ (128, 50257) 3.9 against 2.1) and up to 1.5x for 2 rows, and about as long
 * from 32 rows up (issue 20). Setting the count is a store (~0.1 µs), so it is set around each such call.
 */
export const ONE_THREAD_MAX_ROWS = 8;

/**
 * A product of 2–8 rows (`maxRows`) with a weight matrix of at least `minBytes` runs as matrix–vector products
 * (`sgemv`, on OpenBLAS's own threads) over blocks of ~`blockBytes` of the weights, every row on a block before
 * the next block: the block is read from memory once and from the cache for the other rows. What it replaces,
 * `sgemm` with a few rows, packs the whole matrix first and reads it at ~13 GB/s (gpt2-small's head for a batch
 * of 4, (4, 768) @ (768, 50257): 10.6–11.8 ms on one or two threads against 7.1–7.6 ms this way; in a generation
 * step of 4 rows the four products of a layer took 25.5 ms of the step's 44 under `sgemm`). Measured in whole
 * generation runs here: gpt2-small steps of 4 rows 45.9 -> 35–42 ms, of 8 rows no change (medians 53.8 and 53.8
 * over four runs each); bench-tiny's batches of 8 2,197–2,236 -> 2,344–2,464 tokens/s.
 * The same sums in another order (float32 rounding). `COURSE_MULTI_GEMV=0`: `sgemm` for every product.
 */
export const MULTI_GEMV = {
  on: process.env.COURSE_MULTI_GEMV !== "0",
  maxRows: 8,
  minBytes: 1 << 20,
  blockBytes: 6 << 20,
  /** products run this way so far (for tests and profiles) */
  calls: 0,
};

/**
 * C (m, n) = A (m, k) · op(B) as `m` matrix–vector products a block of B at a time (see MULTI_GEMV).
 * B stored (k, n), or (n, k) when `transposeB`; A's rows are `lda` apart.
 */
function multiGemv(gemv: Sgemv, m: number, n: number, k: number, a: Float32Array, lda: number, b: Float32Array, transposeB: boolean, c: Float32Array): void {
  const block = Math.max(16, Math.floor(MULTI_GEMV.blockBytes / (4 * k) / 16) * 16); // output columns a block: 2,048 for k = 768
  for (let c0 = 0; c0 < n; c0 += block) {
    const cols = Math.min(block, n - c0);
    for (let i = 0; i < m; i++) {
      const x = a.subarray(i * lda);
      const y = c.subarray(i * n + c0);
      // B stored (n, k): rows c0.. of it, (cols, k) @ x; stored (k, n): columns c0.., (k, cols)ᵀ @ x
      if (transposeB) gemv(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, cols, k, 1, b.subarray(c0 * k), k, x, 1, 0, y, 1);
      else gemv(CBLAS_ROW_MAJOR, CBLAS_TRANS, k, cols, 1, b.subarray(c0), n, x, 1, 0, y, 1);
    }
  }
}

/** Whether an (m, k) @ (k, n) product runs as multiGemv. */
function multiGemvFits(m: number, k: number, n: number): boolean {
  return MULTI_GEMV.on && sgemv !== null && m >= 2 && m <= MULTI_GEMV.maxRows && 4 * k * n >= MULTI_GEMV.minBytes;
}

/** `f` on one OpenBLAS thread when `rows` is small (see ONE_THREAD_MAX_ROWS) and the library is OpenBLAS. */
function withThreadsFor(rows: number, f: () => void): void {
  if (setThreads === null || getThreads === null || rows > ONE_THREAD_MAX_ROWS) return f();
  const before = getThreads();
  if (before <= 1) return f();
  setThreads(1);
  try {
    f();
  } finally {
    setThreads(before);
  }
}

/**
 * OpenBLAS's name for the kernels it runs ("Haswell", "Cooperlake", …), or null for another BLAS or none loaded: the
 * engine's report shows it. OpenBLAS picks them for the CPU unless OPENBLAS_CORETYPE says otherwise (this project's
 * machine sets OPENBLAS_CORETYPE=Haswell in its environment: its AMD EPYC then runs the AVX2 kernels, where OpenBLAS
 * 0.3.21 on its own picks Cooperlake's AVX-512 ones, 1.6–2x as fast for products of many rows).
 */
let coreName: (() => string) | null = null;
export function blasCoreName(): string | null {
  try {
    return coreName?.() ?? null;
  } catch {
    return null;
  }
}

/** Load koffi and a BLAS once per process; never throws. */
export function loadBlas(): BlasInfo {
  if (loaded !== null) return loaded;
  const setting = process.env.COURSE_BLAS ?? "";
  if (setting === "0" || setting === "off") return (loaded = { library: null, reason: "BLAS off (COURSE_BLAS=0)" });
  let koffi: { load(path: string): { func(signature: string): unknown } };
  try {
    // through a variable: koffi is an optional dependency
    const requireOptional: (name: string) => unknown = (name) => require(name);
    koffi = requireOptional("koffi") as typeof koffi;
  } catch {
    return (loaded = { library: null, reason: "no BLAS: koffi not installed" });
  }
  const names = setting !== "" ? [setting] : CANDIDATE_LIBRARIES[process.platform] ?? [];
  const failures: string[] = [];
  for (const name of names) {
    try {
      const lib = koffi.load(name);
      sgemm = lib.func(
        "void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha, " +
          "float *a, int lda, float *b, int ldb, float beta, _Out_ float *c, int ldc)",
      ) as Sgemm;
      sgemv = lib.func(
        "void cblas_sgemv(int order, int transA, int m, int n, float alpha, float *a, int lda, " +
          "float *x, int incx, float beta, _Out_ float *y, int incy)",
      ) as Sgemv;
      try {
        setThreads = lib.func("void openblas_set_num_threads(int n)") as (n: number) => void;
        getThreads = lib.func("int openblas_get_num_threads()") as () => number;
        coreName = lib.func("const char *openblas_get_corename()") as () => string;
      } catch {
        setThreads = getThreads = coreName = null; // not OpenBLAS
      }
      return (loaded = { library: name, reason: "" });
    } catch (err) {
      failures.push(`${name}: ${String((err as Error)?.message ?? err).split("\n")[0]}`);
    }
  }
  const hint = setting !== "" ? `COURSE_BLAS=${setting} did not load (${failures.join("; ")})` : "no OpenBLAS found (e.g. apt-get install libopenblas0)";
  return (loaded = { library: null, reason: `no BLAS: ${hint}` });
}

/** a: (...batchA, m, k) or (...batchA, k, m) if transposeA; b likewise; out: (...batch, m, n). */
function blasBatchMatMul(fallback: KernelImpl, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  const { transposeA, transposeB } = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (sgemm === null || a.dtype !== "float32" || b.dtype !== "float32") return fallback(args);
  const ra = a.shape.length;
  const rb = b.shape.length;
  const m = transposeA ? a.shape[ra - 1] : a.shape[ra - 2];
  const k = transposeA ? a.shape[ra - 2] : a.shape[ra - 1];
  const n = transposeB ? b.shape[rb - 2] : b.shape[rb - 1];
  const kB = transposeB ? b.shape[rb - 1] : b.shape[rb - 2];
  const batchShapeA = a.shape.slice(0, -2);
  const batchShapeB = b.shape.slice(0, -2);
  const batchA = tf.util.sizeFromShape(batchShapeA);
  const batchB = tf.util.sizeFromShape(batchShapeB);
  const sameBatch = batchA === batchB && tf.util.arraysEqual(batchShapeA, batchShapeB);
  if (k !== kB || !(sameBatch || batchA === 1 || batchB === 1)) return fallback(args);
  const outBatchShape = tf.backend_util.assertAndGetBroadcastShape(batchShapeA, batchShapeB);
  const batch = Math.max(batchA, batchB);

  const backend = args.backend as WasmBackendLike;
  const out = backend.makeOutput([...outBatchShape, m, n], "float32");
  if (m * n === 0) return out;
  // heap views taken after makeOutput, which may grow (and move) the heap
  const av = backend.typedArrayFromHeap(a) as Float32Array;
  const bv = backend.typedArrayFromHeap(b) as Float32Array;
  const cv = backend.typedArrayFromHeap(out) as Float32Array;
  const opA = transposeA ? CBLAS_TRANS : CBLAS_NO_TRANS;
  const opB = transposeB ? CBLAS_TRANS : CBLAS_NO_TRANS;
  const lda = transposeA ? m : k; // row length of a as stored
  const ldb = transposeB ? k : n;
  if (batchB === 1 && !transposeA && batch * m > 1) {
    // every a matrix times the same b: one tall (batch·m, k) @ (k, n) call
    if (multiGemvFits(batch * m, k, n) && sgemv !== null) {
      multiGemv(sgemv, batch * m, n, k, av, lda, bv, transposeB, cv);
      MULTI_GEMV.calls++;
      return out;
    }
    const gemm = sgemm;
    withThreadsFor(batch * m, () => gemm(CBLAS_ROW_MAJOR, opA, opB, batch * m, n, k, 1, av, lda, bv, ldb, 0, cv, n));
    return out;
  }
  for (let i = 0; i < batch; i++) {
    const ai = batchA === 1 ? av : av.subarray(i * m * k);
    const bi = batchB === 1 ? bv : bv.subarray(i * k * n);
    const ci = cv.subarray(i * m * n);
    if (m === 1 && sgemv !== null) {
      // one row (a token being generated): y = op(B)ᵀ a as a matrix-vector product, ~2.5x faster than
      // sgemm with m = 1 in OpenBLAS (1x768 @ 768x50257: 7 ms against 18 ms). B stored (k, n), or (n, k) if transposed.
      if (transposeB) sgemv(CBLAS_ROW_MAJOR, CBLAS_NO_TRANS, n, k, 1, bi, k, ai, 1, 0, ci, 1);
      else sgemv(CBLAS_ROW_MAJOR, CBLAS_TRANS, k, n, 1, bi, n, ai, 1, 0, ci, 1);
      continue;
    }
    const gemm = sgemm;
    withThreadsFor(m, () => gemm(CBLAS_ROW_MAJOR, opA, opB, m, n, k, 1, ai, lda, bi, ldb, 0, ci, n));
  }
  return out;
}

const patch = new KernelPatch(() => patchKernel("BatchMatMul", "wasm", (fallback) => (args) => blasBatchMatMul(fallback, args)));

/** Put the BLAS kernel in front of wasm's current BatchMatMul. Returns the engine-report note. */
export function installBlasMatMul(): string {
  const info = loadBlas();
  if (info.library === null) return info.reason;
  patch.install();
  const core = blasCoreName();
  return `matmul on ${info.library.split("/").pop()}${core ? ` (${core} kernels)` : ""}`;
}

/** Take the BLAS kernel out again (the kernel it replaced goes back). Idempotent. */
export function removeBlasMatMul(): void {
  patch.remove();
}

/** Whether wasm's BatchMatMul is the BLAS one now. */
export function blasMatMulInstalled(): boolean {
  return patch.installed;
}
