/**
 * AdamW over a whole arena of parameters in one dispatch: lib/train/adamw.ts's update, in its order of
 * operations, for every value of the arena (parameters, gradients and both moments share one layout):
 *
 *   m ← β1·m + (1-β1)·g;   v ← β2·v + (1-β2)·g²
 *   p ← p·(1 - lr·wd) - stepSize · m / (√v · 1/√(1-β2ᵗ) + ε),   stepSize = lr / (1-β1ᵗ)
 *
 * Guarded by the step's loss: when it is NaN or infinite (read from the GPU, never sent to the host
 * first) nothing changes, so a bad batch never spreads into the weights; the host then reports it.
 * One thread per value, four values a thread where the arena's length allows (vec4).
 */
import { f32bits, GpuRuntime } from "../runtime";
import type { Recorder } from "../recorder";
import type { At, Buf } from "../runtime";
import { IS_FINITE, ROW_THREADS, VALUE_MAIN, grid2d } from "./wgsl";

const code = (vec: boolean) => {
  const T = vec ? "vec4<f32>" : "f32";
  return /* wgsl */ `
struct Params { n: u32, decay: f32, beta1: f32, beta2: f32, oneMinusBeta1: f32, oneMinusBeta2: f32, stepSize: f32, invBc2Sqrt: f32, eps: f32, lossOff: u32 }
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> Pm: array<${T}>;
@group(0) @binding(2) var<storage, read> G: array<${T}>;
@group(0) @binding(3) var<storage, read_write> M: array<${T}>;
@group(0) @binding(4) var<storage, read_write> V: array<${T}>;
@group(0) @binding(5) var<storage, read> Loss: array<f32>;
${IS_FINITE}
${VALUE_MAIN}
  if (i >= P.n || !isFinite(Loss[P.lossOff])) { return; }
  let g = G[i];
  let m = M[i] * P.beta1 + g * P.oneMinusBeta1;
  let v = V[i] * P.beta2 + (g * g) * P.oneMinusBeta2;
  M[i] = m;
  V[i] = v;
  let denom = sqrt(v) * P.invBc2Sqrt + P.eps;
  Pm[i] = Pm[i] * P.decay - (m / denom) * P.stepSize;
}`;
};

export interface AdamWStep {
  /** 1 - lr · weightDecay */
  decay: number;
  beta1: number;
  beta2: number;
  /** lr / (1 - β1ᵗ) */
  stepSize: number;
  /** 1 / √(1 - β2ᵗ) */
  invBc2Sqrt: number;
  eps: number;
}

/** Update `count` values (from the start) of one arena; `loss` is the step's loss (the guard). */
export function adamwArena(rt: GpuRuntime, rec: Recorder, count: number, params: Buf, grads: Buf, m: Buf, v: Buf, loss: At, s: AdamWStep): void {
  const vec = count % 4 === 0;
  const k = rt.kernel({ key: `adamw-${vec ? "vec4" : "f32"}`, code: code(vec), bindings: ["write", "read", "write", "write", "read"] });
  const n = vec ? count / 4 : count;
  const words = [n, f32bits(s.decay), f32bits(s.beta1), f32bits(s.beta2), f32bits(1 - s.beta1), f32bits(1 - s.beta2), f32bits(s.stepSize), f32bits(s.invBc2Sqrt), f32bits(s.eps), loss.offset];
  rec.dispatch(k, [params, grads, m, v, loss.buf], words, grid2d(Math.ceil(n / ROW_THREADS)));
}
