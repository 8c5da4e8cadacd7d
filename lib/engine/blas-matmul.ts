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
      } catch {
        setThreads = getThreads = null; // not OpenBLAS
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
  return `matmul on ${info.library.split("/").pop()}`;
}

/** Take the BLAS kernel out again (the kernel it replaced goes back). Idempotent. */
export function removeBlasMatMul(): void {
  patch.remove();
}

/** Whether wasm's BatchMatMul is the BLAS one now. */
export function blasMatMulInstalled(): boolean {
  return patch.installed;
}
