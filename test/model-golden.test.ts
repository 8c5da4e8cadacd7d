// Golden tests: the TypeScript GPT against the book's PyTorch GPTModel (test/reference/gpt_reference.py)
// on the same deterministic weights: logits and loss within 1e-4, gradients close, greedy tokens identical.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTModel } from "../lib/model/gpt";
import { maskedCrossEntropy } from "../lib/train/loss";
import { DETERMINISTIC_WEIGHTS_VERSION, deterministicModel, libraryParamShapes } from "./helpers/deterministic-weights";
import { golden, maxAbsDiff } from "./helpers/golden";

const TOL = 1e-4;

const load = golden;

/** The book's generate_text_simple: crop to the context, take the last position's argmax, append. */
function greedy(model: GPTModel, prompt: number[][], steps: number): number[][] {
  const rows = prompt.map((r) => [...r]);
  for (let s = 0; s < steps; s++) {
    const next = tf.tidy(() => {
      const window = rows.map((r) => r.slice(-model.cfg.contextLength));
      const logits = model.forward(tf.tensor2d(window, undefined, "int32")); // (B, T, V)
      const t = window[0].length;
      return tf.argMax(logits.slice([0, t - 1, 0], [-1, 1, -1]).squeeze([1]), -1).arraySync() as number[]; // (B, V) -> (B,)
    });
    next.forEach((id, b) => rows[b].push(id));
  }
  return rows;
}

before(async () => {
  await initEngine({ log: () => {} });
});

for (const name of ["small", "vocab"]) {
  const g = load(name);

  test(`${name}: the fixture was made with this weight formula`, () => {
    assert.equal(g.formulaVersion, DETERMINISTIC_WEIGHTS_VERSION);
  });

  test(`${name}: logits, log-sum-exp and argmax match PyTorch`, () => {
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const logits = model.forward(tf.tensor2d(g.inputs, undefined, "int32"));
    const all = logits.arraySync() as number[][][];
    let worst = 0;
    for (const s of g.logitSlices) {
      const width = s.values[0][0].length;
      const got = all.flatMap((row) => row.flatMap((pos) => pos.slice(s.start, s.start + width)));
      worst = Math.max(worst, maxAbsDiff(got, s.values.flat(2)));
    }
    const lse = tf.tidy(() => tf.logSumExp(logits, -1).arraySync() as number[][]);
    const worstLse = maxAbsDiff(lse.flat(), g.logsumexp.flat());
    const argmax = tf.tidy(() => tf.argMax(logits, -1).arraySync() as number[][]);
    console.log(`# ${name}: max |logit - torch| = ${worst.toExponential(2)}, max |logsumexp - torch| = ${worstLse.toExponential(2)}`);
    assert.ok(worst < TOL, `logits differ by ${worst}`);
    assert.ok(worstLse < TOL, `logsumexp differs by ${worstLse}`);
    assert.deepEqual(argmax, g.argmax);
    tf.dispose(logits);
    model.dispose();
  });

  test(`${name}: masked loss and gradients match PyTorch`, () => {
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const inputs = tf.tensor2d(g.inputs, undefined, "int32");
    const targets = tf.tensor2d(g.targets, undefined, "int32");
    const shifted = tf.tensor2d(g.inputs.map((r) => [...r.slice(1), r[0]]), undefined, "int32"); // torch's x.roll(-1, 1)
    const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(inputs), targets));
    const loss = value.dataSync()[0];
    const lossAll = tf.tidy(() => maskedCrossEntropy(model.forward(inputs), shifted).dataSync()[0]);
    // variableGrads keys by the tf.Variable's own name: map back to library names
    const byVar = new Map([...model.params].map(([n, v]) => [v.name, n]));
    const named = new Map(Object.entries(grads).map(([k, t]) => [byVar.get(k)!, t]));
    let worstGrad = 0;
    let worstNormRel = 0;
    for (const [pname, want] of Object.entries(g.grads)) {
      const got = Array.from(named.get(pname)!.dataSync<"float32">());
      worstGrad = Math.max(worstGrad, maxAbsDiff(got.slice(0, want.first.length), want.first));
      const norm = Math.sqrt(got.reduce((s, x) => s + x * x, 0));
      worstNormRel = Math.max(worstNormRel, Math.abs(norm - want.norm) / want.norm);
    }
    console.log(
      `# ${name}: |loss - torch| = ${Math.abs(loss - g.loss).toExponential(2)}, ` +
        `|loss (no ignored) - torch| = ${Math.abs(lossAll - g.lossAllKept).toExponential(2)}, ` +
        `max |grad - torch| = ${worstGrad.toExponential(2)}, max rel. grad-norm diff = ${worstNormRel.toExponential(2)}`,
    );
    assert.ok(Math.abs(loss - g.loss) < TOL, `loss ${loss} vs ${g.loss}`);
    assert.ok(Math.abs(lossAll - g.lossAllKept) < TOL, `loss ${lossAll} vs ${g.lossAllKept}`);
    assert.ok(worstGrad < TOL, `gradients differ by ${worstGrad}`);
    assert.ok(worstNormRel < 1e-4, `gradient norms differ by ${worstNormRel} (relative)`);
    tf.dispose([value, inputs, targets, shifted, ...Object.values(grads)]);
    model.dispose();
  });

  test(`${name}: greedy decoding gives PyTorch's tokens`, () => {
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const steps = g.greedy[0].length - g.prompt[0].length;
    assert.deepEqual(greedy(model, g.prompt, steps), g.greedy);
    model.dispose();
  });
}

test("the helper's parameter list is the model's: same names, order and shapes", () => {
  const cfg = load("small").config;
  const model = new GPTModel(cfg, { init: "zeros" });
  const fromModel = [...model.params].map(([n, v]) => [n, v.shape]);
  assert.deepEqual(fromModel, libraryParamShapes(cfg));
  assert.deepEqual(libraryParamShapes({ ...cfg, qkvBias: false }).filter(([n]) => n.includes("wKey")).map(([n]) => n), [
    "blocks.0.att.wKey.weight",
    "blocks.1.att.wKey.weight",
  ]);
  model.dispose();
});
