/**
 * Patches to the wasm backend, installed by `initEngine` (lib/engine.ts) before wasm starts.
 * Each returns a short note for the engine's one-line report.
 */

/** Install every wasm patch; returns notes such as "threads 2". */
export function installWasmPatches(): string[] {
  return [];
}
