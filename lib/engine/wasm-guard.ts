/**
 * Which tfjs the wasm patches were written for, and the check that keeps them off any other.
 *
 * The engine's wasm kernels call methods of the package's exported `BackendWasm` class
 * (`makeOutput`, `typedArrayFromHeap`, ...). The speed patches lean on more than those
 * declarations: on how tfjs-backend-wasm 4.22.0 behaves. That its transposed matmul is a slow C++
 * loop (wasm-matmul.ts), that no kernel writes a tensor's data in place, so Identity may share it
 * (wasm-identity.ts), that a tensor is one dense array on the heap that native code may write
 * (blas-matmul.ts). Another release can change any of that without changing a type, so on a tfjs
 * these were not written for they stay off, the engine runs wasm as shipped and its line says why.
 */
import * as tf from "@tensorflow/tfjs";

/** The tfjs release (core and tfjs-backend-wasm) the speed patches were written and tested for. */
export const PATCHES_WRITTEN_FOR = "4.22.0";

/** The methods of tfjs-backend-wasm's `BackendWasm` that the engine's kernels call. */
export interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array | Int32Array | Uint8Array;
  disposeData(dataId: tf.DataId): boolean;
  incRef(dataId: tf.DataId): void;
}
const BACKEND_METHODS: (keyof WasmBackendLike)[] = ["makeOutput", "typedArrayFromHeap", "disposeData", "incRef"];
/** The wasm kernels the patches wrap or call. */
const KERNELS_USED = ["BatchMatMul", "Identity", "Transpose", "GatherV2"];

/** What the guard looks at: the installed versions and wasm's backend class. */
export interface WasmFound {
  /** `tf.version_core` */
  core: string;
  /** tfjs-backend-wasm's `version_wasm` */
  wasm: string;
  /** `BackendWasm.prototype`: where the methods above must be */
  backend: object;
}

/** What is installed (tfjs-backend-wasm must be loadable). */
export function foundWasm(): WasmFound {
  const pkg = require("@tensorflow/tfjs-backend-wasm") as { version_wasm?: string; BackendWasm?: { prototype: object } };
  return { core: tf.version_core, wasm: pkg.version_wasm ?? "unknown", backend: pkg.BackendWasm?.prototype ?? {} };
}

/** Why no engine kernel can run on this wasm backend (its methods or kernels are missing), or undefined. */
export function internalsProblem(found: WasmFound): string | undefined {
  const backend = found.backend as Record<string, unknown>;
  const methods = BACKEND_METHODS.filter((m) => typeof backend[m] !== "function");
  const kernels = KERNELS_USED.filter((k) => tf.getKernel(k, "wasm") === undefined);
  if (methods.length === 0 && kernels.length === 0) return undefined;
  const lacks = [...methods.map((m) => `BackendWasm.${m}`), ...kernels.map((k) => `kernel ${k}`)];
  return `tfjs-backend-wasm ${found.wasm} lacks ${lacks.join(", ")}`;
}

/** Why the speed patches must stay off, or undefined when they were written for this tfjs. */
export function speedPatchProblem(found: WasmFound): string | undefined {
  const broken = internalsProblem(found);
  if (broken !== undefined) return broken;
  if (found.core === PATCHES_WRITTEN_FOR && found.wasm === PATCHES_WRITTEN_FOR) return undefined;
  const what = found.core === found.wasm ? found.core : `tfjs-core ${found.core} with tfjs-backend-wasm ${found.wasm}`;
  return `written for tfjs ${PATCHES_WRITTEN_FOR}, found ${what}`;
}
