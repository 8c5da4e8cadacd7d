/**
 * What `initEngine` does to the wasm backend before starting it (lib/engine/index.ts).
 *
 * - always: register the kernels wasm lacks for training (wasm-kernels.ts);
 * - unless `patches` is false, or the installed tfjs is not the one they were written for
 *   (wasm-guard.ts): the speed patches, each a wrapper that keeps the kernel it replaced
 *   (patch-kernel.ts), so the plain backend stays one flag away:
 *   - wasm-matmul.ts: transposed matmuls as explicit transpose + XNNPACK's fast kernel;
 *   - blas-matmul.ts: on top of that, matmuls on the machine's native BLAS when there is one;
 *   - wasm-xent-grad.ts: the fused loss's gradient in one pass (lib/train/fused-loss.ts);
 *   - wasm-identity.ts: Identity shares its input's data instead of copying it.
 *
 * Returns short notes for the engine's one-line report.
 */
import { registerMissingWasmKernels } from "./wasm-kernels";
import { installFastTransposedMatMul, removeFastTransposedMatMul } from "./wasm-matmul";
import { installBlasMatMul, removeBlasMatMul } from "./blas-matmul";
import { registerXentGradKernel, unregisterXentGradKernel } from "./wasm-xent-grad";
import { installSharedIdentity, removeSharedIdentity } from "./wasm-identity";
import { WasmFound, foundWasm, internalsProblem, speedPatchProblem } from "./wasm-guard";

/** Take every speed patch out, the last installed first (the BLAS matmul wraps the transposed one). */
function removeSpeedPatches(): void {
  removeSharedIdentity();
  unregisterXentGradKernel();
  removeBlasMatMul();
  removeFastTransposedMatMul();
}

/** `found`: what the guard checks; by default what is installed (tests pass another version). */
export function installWasmPatches(patches: boolean, found: WasmFound = foundWasm()): string[] {
  const broken = internalsProblem(found);
  if (broken !== undefined) {
    removeSpeedPatches();
    // training then fails with tfjs's own "kernel not registered" for the embedding gradient
    return [`no wasm kernels: ${broken}`];
  }
  registerMissingWasmKernels();
  if (!patches) {
    removeSpeedPatches();
    return ["unpatched"];
  }
  const problem = speedPatchProblem(found);
  if (problem !== undefined) {
    removeSpeedPatches();
    return [`speed patches off: ${problem}`];
  }
  installFastTransposedMatMul();
  const blas = installBlasMatMul();
  registerXentGradKernel();
  installSharedIdentity();
  return ["patched", blas];
}
