/**
 * The feed-forward network inside each transformer block (the book's
 * `FeedForward` and `GELU`, chapter 4): widen each token's vector 4x, apply
 * GELU, project back. It acts on every position separately.
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import { fuseNow, geluFused, taping } from "./fused-layers";
import { Linear } from "./linear";
import { ParamContext } from "./params";

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/**
 * GELU with the tanh approximation GPT-2 was trained with:
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x); // x^3 (two multiplications: cheaper than tf.pow, forward and backward)
  const inner = tf.mul(SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, cube)));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/**
 * The same GELU written with a sigmoid: 0.5 (1 + tanh u) = σ(2u), so GELU(x) = x · σ(2u); equal to `gelu` up to
 * float32 rounding. On the WebAssembly engine TF.js's Tanh is a scalar loop and its Sigmoid XNNPACK's vectorised
 * kernel: (4, 3072) took 128 µs against 29 here, and a gpt2-small prompt of 4 × 60 tokens spent ~130 ms of its
 * ~390 in Tanh. Used where no gradient tape records (generation, evaluation) on wasm (GELU_SIGMOID).
 */
export function geluSigmoid(x: tf.Tensor): tf.Tensor {
  const cube = tf.mul(tf.mul(x, x), x); // x^3
  const inner = tf.mul(2 * SQRT_2_OVER_PI, tf.add(x, tf.mul(0.044715, cube))); // 2u
  return tf.mul(x, tf.sigmoid(inner));
}

/**
 * Whether the feed-forward's GELU is `geluSigmoid` when no tape records: by default on the wasm engine only;
 * `COURSE_GELU_SIGMOID=1` on every engine, `=0` on none (the book's tanh form, `gelu`). A training step's tape
 * always records the tanh form (fused-layers.ts).
 */
export const GELU_SIGMOID: { on: "wasm" | boolean } = {
  on: process.env.COURSE_GELU_SIGMOID === "0" ? false : process.env.COURSE_GELU_SIGMOID === "1" ? true : "wasm",
};

const geluSigmoidNow = (): boolean => (GELU_SIGMOID.on === "wasm" ? tf.getBackend() === "wasm" : GELU_SIGMOID.on);

export class FeedForward {
  readonly fc1: Linear;
  readonly fc2: Linear;

  /** `residualStd`: init std of the projection back into the residual stream (see block.ts). */
  constructor(ctx: ParamContext, name: string, embDim: number, residualStd = INIT_STD) {
    this.fc1 = new Linear(ctx, `${name}.fc1`, embDim, 4 * embDim);
    this.fc2 = new Linear(ctx, `${name}.fc2`, 4 * embDim, embDim, { std: residualStd });
  }

  /** (B, T, C) -> (B, T, C) */
  apply(x: tf.Tensor): tf.Tensor {
    // the fused GELU (fused-layers.ts) computes the same values and keeps only its input for the backward pass
    // without a tape, on wasm, the sigmoid form of the same GELU (its Tanh kernel is slow there)
    const act = fuseNow() ? geluFused : !taping() && geluSigmoidNow() ? geluSigmoid : gelu;
    const hidden = act(this.fc1.apply(x)); // (B, T, C) -> (B, T, 4C)
    return this.fc2.apply(hidden); // (B, T, 4C) -> (B, T, C)
  }
}
