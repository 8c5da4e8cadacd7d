/**
 * A faster transposed matmul for the wasm backend.
 *
 * wasm's `BatchMatMul` sends `transposeA`/`transposeB` to a plain C++ loop instead of
 * XNNPACK; on this machine that is ~10x slower than transposing explicitly and calling the
 * plain kernel (568x128 @ 128x50257: 3.3-5.0 s vs 0.5-0.8 s). Every matmul gradient takes
 * the transposed path (dA = dY @ Bᵀ, dB = Aᵀ @ dY), so training on wasm spends most of its
 * time there. This wrapper does the transpose itself, then calls the original kernel with
 * both flags off. Results are the same up to float rounding (checked in test/engine-wasm.test.ts).
 *
 * The original kernel is kept (patch-kernel.ts) so the patch can be removed again:
 * `initEngine({ patches: false })` or `COURSE_WASM_PATCHES=0`.
 */
import * as tf from "@tensorflow/tfjs";
import { KernelArgs, KernelImpl, KernelPatch, patchKernel } from "./patch-kernel";
import type { WasmBackendLike } from "./wasm-guard";

/** Swap the last two dims of t with wasm's own Transpose kernel: (..., m, n) -> (..., n, m). */
function transposeLastTwo(t: tf.TensorInfo, backend: unknown): tf.TensorInfo {
  const transpose = tf.getKernel("Transpose", "wasm");
  if (transpose === undefined) throw new Error("wasm Transpose kernel missing");
  const rank = t.shape.length;
  const perm = [...Array(rank).keys()];
  [perm[rank - 2], perm[rank - 1]] = [perm[rank - 1], perm[rank - 2]];
  return transpose.kernelFunc({ inputs: { x: t }, backend: backend as never, attrs: { perm } }) as tf.TensorInfo;
}

function batchMatMulExplicitTranspose(plain: KernelImpl, args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] {
  const attrs = args.attrs as { transposeA: boolean; transposeB: boolean };
  if (!attrs.transposeA && !attrs.transposeB) return plain(args);
  const backend = args.backend as WasmBackendLike;
  const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
  // Aᵀ: (..., k, m) -> (..., m, k);  Bᵀ: (..., n, k) -> (..., k, n)
  const a2 = attrs.transposeA ? transposeLastTwo(a, backend) : a;
  const b2 = attrs.transposeB ? transposeLastTwo(b, backend) : b;
  try {
    // (..., m, k) @ (..., k, n) -> (..., m, n) on XNNPACK's fast path
    return plain({
      inputs: { a: a2, b: b2 },
      backend: args.backend,
      attrs: { ...args.attrs, transposeA: false, transposeB: false },
    });
  } finally {
    if (a2 !== a) backend.disposeData(a2.dataId);
    if (b2 !== b) backend.disposeData(b2.dataId);
  }
}

const patch = new KernelPatch(() =>
  patchKernel("BatchMatMul", "wasm", (plain) => (args) => batchMatMulExplicitTranspose(plain, args)),
);

/** Replace wasm's BatchMatMul with the explicit-transpose wrapper. Idempotent; true if this call did. */
export function installFastTransposedMatMul(): boolean {
  return patch.install();
}

/** Put wasm's own BatchMatMul back. Idempotent; true if this call did. */
export function removeFastTransposedMatMul(): boolean {
  return patch.remove();
}
