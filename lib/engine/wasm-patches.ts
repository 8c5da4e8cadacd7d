/**
 * What `initEngine` does to the wasm backend before starting it (lib/engine.ts).
 *
 * - always: register the kernels wasm lacks for training (wasm-kernels.ts);
 * - unless `patches` is false: the speed patches (wasm-matmul.ts), each a wrapper that
 *   keeps the original kernel so the plain backend stays one flag away.
 *
 * Returns short notes for the engine's one-line report.
 */
import { registerMissingWasmKernels } from "./wasm-kernels";
import { installFastTransposedMatMul, removeFastTransposedMatMul } from "./wasm-matmul";

export function installWasmPatches(patches: boolean): string[] {
  registerMissingWasmKernels();
  if (patches) installFastTransposedMatMul();
  else removeFastTransposedMatMul();
  return [patches ? "patched" : "unpatched"];
}
