/**
 * One AdamW update (lib/train/adamw.ts) as one wasm kernel: a single pass over a parameter
 * instead of thirteen tf ops, each writing a temporary the size of the parameter.
 *
 * For the tiny model's two (50,257 x 128) tables those temporaries are 25 MB apiece, ~320 MB
 * alive at once inside the update, which set the wasm heap's high-water mark (and the heap
 * never shrinks). This kernel writes only the three results. Every intermediate value is rounded
 * to float32 in the order the tf ops compute it, so the results are the plain path's, bit for bit
 * (test/train-adamw.test.ts). Backends without the kernel run the tf ops.
 *
 *   m' = β1·m + (1-β1)·g        v' = β2·v + (1-β2)·g²
 *   p' = p·(1 - lr·wd) - stepSize · m' / (√v' / √(1-β2^t) + eps)
 */
import * as tf from "@tensorflow/tfjs";
import type { WasmBackendLike } from "./wasm-kernels";
import { ADAMW_KERNEL, AdamWKernelAttrs } from "../train/adamw";

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
const f32 = Math.fround;

function adamwUpdate(args: KernelArgs): tf.TensorInfo[] {
  const backend = args.backend as WasmBackendLike;
  const { p, g, m, v } = args.inputs as Record<"p" | "g" | "m" | "v", tf.TensorInfo>;
  const a = args.attrs as unknown as AdamWKernelAttrs;
  const outP = backend.makeOutput(p.shape, "float32");
  const outM = backend.makeOutput(p.shape, "float32");
  const outV = backend.makeOutput(p.shape, "float32");
  // heap views after every makeOutput (allocation may move the heap)
  const [ps, gs, ms, vs] = [p, g, m, v].map((t) => backend.typedArrayFromHeap(t) as Float32Array);
  const [po, mo, vo] = [outP, outM, outV].map((t) => backend.typedArrayFromHeap(t) as Float32Array);
  // the scalars as tf holds them: float32
  const b1 = f32(a.beta1), c1 = f32(1 - a.beta1), b2 = f32(a.beta2), c2 = f32(1 - a.beta2);
  const bc2 = f32(a.biasCorrection2Sqrt), eps = f32(a.eps), stepSize = f32(a.stepSize), decay = f32(a.decay);
  const decayed = a.decay !== 1;
  for (let i = 0; i < ps.length; i++) {
    const gi = gs[i];
    const mNew = f32(f32(ms[i] * b1) + f32(gi * c1));
    const vNew = f32(f32(vs[i] * b2) + f32(f32(gi * gi) * c2));
    const denom = f32(f32(f32(Math.sqrt(vNew)) / bc2) + eps);
    const pd = decayed ? f32(ps[i] * decay) : ps[i];
    mo[i] = mNew;
    vo[i] = vNew;
    po[i] = f32(pd - f32(f32(mNew / denom) * stepSize));
  }
  return [outP, outM, outV];
}

/** Register the kernel under backend "wasm" (once). */
export function registerAdamWKernel(): void {
  if (tf.getKernel(ADAMW_KERNEL, "wasm") !== undefined) return;
  tf.registerKernel({ kernelName: ADAMW_KERNEL, backendName: "wasm", kernelFunc: adamwUpdate as unknown as tf.KernelFunc });
}

/** Take it out again (AdamW then runs tf ops). */
export function unregisterAdamWKernel(): void {
  if (tf.getKernel(ADAMW_KERNEL, "wasm") !== undefined) tf.unregisterKernel(ADAMW_KERNEL, "wasm");
}
