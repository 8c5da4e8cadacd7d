// The model's building blocks against values printed by torch: LayerNorm (biased variance, eps 1e-5)
// and GELU's tanh approximation (which differs from the exact erf GELU in the 4th decimal).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { FeedForward, gelu, GELU_SIGMOID, geluSigmoid } from "../lib/model/feedforward";
import { FUSED_LAYERS } from "../lib/model/fused-layers";
import { LayerNorm } from "../lib/model/layernorm";
import { ParamContext } from "../lib/model/params";
import { Rng } from "../lib/core/random";

before(async () => {
  await initEngine({ log: () => {} });
});

function close(got: number[], want: number[], tol: number, what: string) {
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) < tol, `${what}[${i}]: ${g} vs ${want[i]}`));
}

test("GELU is torch's gelu(approximate='tanh'), not the erf one", () => {
  const x = [-3, -1, 0, 0.5, 1, 2];
  const got = tf.tidy(() => Array.from(gelu(tf.tensor1d(x)).dataSync()));
  // torch.nn.functional.gelu(x, approximate='tanh')
  close(got, [-0.003637433, -0.158807993, 0, 0.345714003, 0.841192007, 1.954597712], 1e-6, "gelu");
  // the exact GELU gives -0.004049867 at -3: the difference is visible at this tolerance
  assert.ok(Math.abs(got[0] - -0.004049867) > 1e-4);
});

test("the sigmoid form of GELU (wasm, no tape) is torch's tanh GELU too, and the feed-forward uses it only without a tape on wasm", () => {
  const x = [-3, -1, 0, 0.5, 1, 2];
  const got = tf.tidy(() => Array.from(geluSigmoid(tf.tensor1d(x)).dataSync()));
  close(got, [-0.003637433, -0.158807993, 0, 0.345714003, 0.841192007, 1.954597712], 1e-6, "geluSigmoid");
  // against the formula in float64 over [-12, 12]: as close as the tanh form (which loses digits to 1 + tanh u
  // where x is very negative)
  const xs = Array.from({ length: 4001 }, (_, i) => -12 + (24 * i) / 4000);
  const exact = xs.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
  const worst = (f: (t: tf.Tensor) => tf.Tensor) => {
    const got = tf.tidy(() => Array.from(f(tf.tensor1d(xs)).dataSync()));
    return Math.max(...got.map((g, i) => Math.abs(g - exact[i]) / (1 + Math.abs(exact[i]))));
  };
  const [sigmoidForm, tanhForm] = [worst(geluSigmoid), worst(gelu)];
  assert.ok(sigmoidForm < 1e-6, `sigmoid form: max error ${sigmoidForm}`);
  assert.ok(sigmoidForm <= tanhForm + 1e-7, `sigmoid form ${sigmoidForm} against tanh form ${tanhForm}`);
  // which one the layer runs: count the Sigmoid and Tanh kernels of one forward pass, with and without a tape
  const ctx: ParamContext = { params: new Map(), rng: new Rng(2), init: "random" };
  const ff = new FeedForward(ctx, "ff", 8);
  const input = tf.randomNormal([2, 3, 8], 0, 1, "float32", 3);
  const kernels = (f: () => void): string[] => {
    const names: string[] = [];
    const eng = tf.engine() as unknown as { runKernel: (name: string, ...rest: unknown[]) => unknown };
    const run = eng.runKernel.bind(eng);
    eng.runKernel = (name: string, ...rest: unknown[]) => {
      names.push(name);
      return run(name, ...rest);
    };
    try {
      tf.tidy(f);
    } finally {
      eng.runKernel = run;
    }
    return names.filter((n) => n === "Sigmoid" || n === "Tanh");
  };
  const saved = GELU_SIGMOID.on;
  try {
    GELU_SIGMOID.on = true;
    assert.deepEqual(kernels(() => ff.apply(input)), ["Sigmoid"]);
    assert.ok(kernels(() => tf.grad((v: tf.Tensor) => ff.apply(v).sum())(input)).every((n) => n === "Tanh"), "a training tape must record the tanh form");
    FUSED_LAYERS.on = false; // the plain layers on a tape: the tanh form too
    try {
      assert.ok(kernels(() => tf.grad((v: tf.Tensor) => ff.apply(v).sum())(input)).every((n) => n === "Tanh"), "a tape over the plain layers must record the tanh form");
    } finally {
      FUSED_LAYERS.on = true;
    }
    GELU_SIGMOID.on = false;
    assert.deepEqual(kernels(() => ff.apply(input)), ["Tanh"]);
    GELU_SIGMOID.on = "wasm";
    assert.deepEqual(kernels(() => ff.apply(input)), [tf.getBackend() === "wasm" ? "Sigmoid" : "Tanh"]);
  } finally {
    GELU_SIGMOID.on = saved;
  }
  tf.dispose(input);
  ctx.params.forEach((p) => p.dispose());
});

test("LayerNorm matches torch.nn.LayerNorm(eps=1e-5): biased variance, scale 1 and shift 0 at init", () => {
  const ctx: ParamContext = { params: new Map(), rng: new Rng(1), init: "random" };
  const norm = new LayerNorm(ctx, "norm", 5);
  assert.deepEqual([...ctx.params.keys()], ["norm.scale", "norm.shift"]);
  const x = tf.tensor3d([[[0.2, -1.3, 0.7, 3.0, 0.0], [1, 1, 1, 1, 1.5]]]);
  const got = tf.tidy(() => Array.from(norm.apply(x).dataSync()));
  close(
    got,
    [-0.227781951, -1.295509815, 0.128127351, 1.765310287, -0.370145679, -0.499937534, -0.499937534, -0.499937534, -0.499937534, 1.999750137],
    1e-5,
    "layernorm",
  );
  // a constant row normalises to zeros (the eps keeps it finite) and then to the shift
  const flat = tf.tidy(() => Array.from(norm.apply(tf.ones([1, 1, 5])).dataSync()));
  assert.deepEqual(flat, [0, 0, 0, 0, 0]);
  tf.dispose([x, ...ctx.params.values()]);
});
