/**
 * Three layers of the model as single ops with their own gradients, so that training keeps only their inputs
 * for the backward pass, not every intermediate tensor TF.js's autodiff would keep.
 *
 * Written as a chain of TF.js ops, the tanh GELU saves eight (B, T, 4C) tensors for its backward pass (x², x³,
 * the inner sum, its scaled copy, tanh, 1 + tanh, 0.5x, …), a LayerNorm four (B, T, C) ones, and a linear
 * layer's bias addition pins the (N, out) product it adds to (TF.js's Add saves both inputs, though its
 * gradient needs only their shapes). On gpt2-small that is ~45 of the ~57 (B, T, C)-sized tensors a block
 * holds between its forward and backward pass. Here each is one op (`tf.customGrad`): its forward pass runs
 * the very same ops as the plain layer (the same numbers), keeps its inputs, and its backward pass works out
 * the derivative from them:
 *
 *   GELU       y = 0.5 x (1 + tanh u),  u = √(2/π) (x + 0.044715 x³)
 *              dy/dx = 0.5 (1 + tanh u) + 0.5 x (1 − tanh² u) √(2/π) (1 + 3 · 0.044715 x²)
 *   LayerNorm  y = x̂ · scale + shift,  x̂ = (x − mean) / √(var + ε)   (over the last axis, C values)
 *              dx = (g − mean(g) − x̂ · mean(g · x̂)) / √(var + ε),  g = dy · scale
 *              dscale = Σ dy · x̂,  dshift = Σ dy   (over every row)
 *   Linear     y = x W + b:  dx = dy Wᵀ,  dW = xᵀ dy,  db = Σ dy   (the ops TF.js's autodiff runs; the rows
 *              folded inside the op, so no recorded reshape keeps the product)
 *
 * The plain layers (feedforward.ts's `gelu`, layernorm.ts, linear.ts) are what the notebooks teach and stay
 * one switch away: `COURSE_FUSED_LAYERS=0`. test/model-fused-layers.test.ts checks values and every gradient
 * against them, and that a training step holds fewer bytes.
 */
import * as tf from "@tensorflow/tfjs";

/** Whether the model's GELU, LayerNorm and biased linear layers run as the fused ops here. */
export const FUSED_LAYERS = { on: process.env.COURSE_FUSED_LAYERS !== "0" };

/**
 * Whether the fused layers should run now: switched on, and a gradient tape recording (a training step).
 * Without a tape (generation, evaluation) nothing is kept for a backward pass, and the plain ops, the same
 * numbers, skip a custom op's own bookkeeping (as inside another custom op's forward pass, where TF.js records
 * nothing either). Reads tfjs-core 4.22's `state.gradientDepth` and `kernelDepth`; without them, on.
 */
export function fuseNow(): boolean {
  if (!FUSED_LAYERS.on) return false;
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number; kernelDepth?: number } }).state;
  if (state?.gradientDepth === undefined || state.kernelDepth === undefined) return true;
  return state.gradientDepth > 0 && state.kernelDepth === 0;
}

/**
 * Whether a gradient tape is recording (a training step, or any tf.grad): tfjs-core 4.22's `state.gradientDepth`;
 * without it, assumed so.
 */
export function taping(): boolean {
  const state = (tf.engine() as unknown as { state?: { gradientDepth?: number } }).state;
  return state?.gradientDepth === undefined || state.gradientDepth > 0;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

/** The plain GELU's ops (feedforward.ts), repeated here so the fused forward pass gives its very numbers. */
function geluOps(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x);
  const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(GELU_CUBIC, cube)));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/** `next`, with `prev` (what it was computed from) freed. */
function then(prev: tf.Tensor, next: tf.Tensor): tf.Tensor {
  prev.dispose();
  return next;
}

/** GELU (tanh approximation) keeping only x for the backward pass. Any shape. */
export const geluFused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, save] = args as [tf.Tensor, tf.GradSaveFunc];
  save([x]);
  // op by op, each freeing what it consumed: at most four x-sized tensors alive at once besides x and dy
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
    const xs = saved[0];
    const x2 = tf.square(xs);
    let t = tf.mul(x2, xs); // x³ …
    t = then(t, tf.mul(t, GELU_CUBIC));
    t = then(t, tf.add(t, xs));
    t = then(t, tf.mul(t, SQRT_2_OVER_PI)); // u
    t = then(t, tf.tanh(t)); // tanh u
    let tail = tf.mul(x2, 3 * GELU_CUBIC);
    x2.dispose();
    tail = then(tail, tf.add(tail, 1));
    tail = then(tail, tf.mul(tail, SQRT_2_OVER_PI)); // du/dx
    let sech2 = tf.square(t);
    sech2 = then(sech2, tf.sub(1, sech2)); // 1 − tanh² u
    tail = then(tail, tf.mul(tail, sech2));
    sech2.dispose();
    tail = then(tail, tf.mul(tail, xs));
    tail = then(tail, tf.mul(tail, 0.5)); // 0.5 x (1 − tanh² u) du/dx
    let slope = then(t, tf.add(t, 1));
    slope = then(slope, tf.mul(slope, 0.5));
    slope = then(slope, tf.add(slope, tail)); // dy/dx
    tail.dispose();
    return then(slope, tf.mul(dy, slope));
  };
  return { value: geluOps(x), gradFunc };
}) as (x: tf.Tensor) => tf.Tensor;

/** (x − mean) and √(var + eps) over the last axis, as layernorm.ts computes them. */
function normParts(x: tf.Tensor, eps: number): { centered: tf.Tensor; std: tf.Tensor } {
  const centered = tf.sub(x, tf.mean(x, -1, true)); // (..., C)
  const std = tf.sqrt(tf.add(tf.mean(tf.square(centered), -1, true), eps)); // (..., 1), biased variance
  return { centered, std };
}

/** LayerNorm over the last axis keeping only x (and scale) for the backward pass. x (..., C), scale and shift (C,). */
export function layerNormFused(x: tf.Tensor, scale: tf.Tensor1D, shift: tf.Tensor1D, eps: number): tf.Tensor {
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [xIn, s, b, save] = args as [tf.Tensor, tf.Tensor1D, tf.Tensor1D, tf.GradSaveFunc];
    save([xIn, s]);
    const { centered, std } = normParts(xIn, eps);
    const value = tf.add(tf.mul(tf.div(centered, std), s), b); // the plain layer's ops
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
      tf.tidy(() => {
        const [xs, sc] = saved;
        const c = xs.shape[xs.rank - 1];
        const parts = normParts(xs, eps);
        const normed = tf.div(parts.centered, parts.std); // x̂ (..., C)
        const g = tf.mul(dy, sc); // dL/dx̂
        const dx = tf.div(tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(normed, tf.mean(tf.mul(g, normed), -1, true))), parts.std);
        const rows = (t: tf.Tensor) => t.reshape([-1, c]); // (..., C) -> (N, C)
        return [dx, tf.sum(rows(tf.mul(dy, normed)), 0), tf.sum(rows(dy), 0)];
      });
    return { value, gradFunc };
  });
  return run(x, scale, shift);
}

/**
 * x W + b over the last axis, keeping only x and W for the backward pass (not the product the bias is added to).
 * x (..., in), W (in, out), b (out,) -> (..., out): the rows are folded and unfolded inside the op, so no
 * reshape is recorded that would keep the product alive.
 */
export const linearFused = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
  const [x, w, b, save] = args as [tf.Tensor, tf.Tensor2D, tf.Tensor1D, tf.GradSaveFunc];
  save([x, w]);
  const [inDim, outDim] = w.shape;
  const lead = x.shape.slice(0, -1);
  const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) =>
    tf.tidy(() => {
      const [xs, ws] = saved as [tf.Tensor, tf.Tensor2D];
      const d = dy.reshape([-1, outDim]) as tf.Tensor2D; // (N, out)
      const rows = xs.reshape([-1, inDim]) as tf.Tensor2D; // (N, in)
      // (N, out) @ (out, in) -> (N, in), unfolded; (in, N) @ (N, out) -> (in, out); Σ over rows -> (out,)
      return [tf.matMul(d, ws, false, true).reshape(xs.shape), tf.matMul(rows, d, true, false), tf.sum(d, 0)];
    });
  const value = tf.add(tf.matMul(x.reshape([-1, inDim]), w), b).reshape([...lead, outDim]); // the plain layer's ops
  return { value, gradFunc };
}) as (x: tf.Tensor, w: tf.Tensor2D, b: tf.Tensor1D) => tf.Tensor;
