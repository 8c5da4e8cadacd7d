/**
 * What `initEngine` does to the wasm backend before starting it (lib/engine/index.ts).
 *
 * - always: register the kernels wasm lacks for training (wasm-kernels.ts);
 * - unless `patches` is false: the speed patches, each a wrapper that keeps the kernel it
 *   replaced, so the plain backend stays one flag away:
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

export function installWasmPatches(patches: boolean): string[] {
  registerMissingWasmKernels();
  if (!patches) {
    removeBlasMatMul();
    removeFastTransposedMatMul();
    unregisterXentGradKernel();
    removeSharedIdentity();
    return ["unpatched"];
  }
  installFastTransposedMatMul();
  registerXentGradKernel();
  installSharedIdentity();
  return ["patched", installBlasMatMul()];
}
