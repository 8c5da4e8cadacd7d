// The lean backward pass (lib/engine/lean-gradients.ts) gives tf.variableGrads' loss and every gradient bit for
// bit (plain and fused loss, dropout on, recomputed blocks, LoRA), leaves no tensors behind, and holds fewer
// bytes at its peak than TF.js's own, which keeps every saved activation and intermediate gradient to the end.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { LEAN_BACKPROP, leanVariableGrads, recordLoss } from "../lib/engine/lean-gradients";
import { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { Rng } from "../lib/core/random";
import { calcLossBatch } from "../lib/train/loss";
import { calcLossBatchFused } from "../lib/train/fused-loss";
import { deterministicModel } from "./helpers/deterministic-weights";
import { peakBufferBytes } from "./helpers/buffer-peak";

const cfg: GPTConfig = { vocabSize: 29, contextLength: 8, embDim: 8, nHeads: 2, nLayers: 3, dropRate: 0.1, qkvBias: true };
const inputs = [[3, 7, 1, 18, 5, 0, 9], [11, 2, 9, 4, 4, 16, 22]];
const targets = [[7, 1, 18, 5, 0, 2, 4], [2, 9, 4, 16, 22, -100, -100]];

before(async () => {
  await initEngine({ log: () => {} });
});

type Grads = typeof tf.variableGrads;

function lossAndGrads(model: GPTModel, lossBatch: typeof calcLossBatch, grads: Grads): { loss: number; grads: Map<string, Float32Array> } {
  const x = tf.tensor2d(inputs, undefined, "int32");
  const y = tf.tensor2d(targets, undefined, "int32");
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n)!);
  const rngBefore = model.rng.state;
  const r = grads(() => lossBatch(model, x, y, true), vars);
  model.rng = Rng.fromState(rngBefore); // the same dropout masks for the other run
  const out = { loss: r.value.dataSync()[0], grads: new Map(names.map((n, i) => [n, r.grads[vars[i].name].dataSync() as Float32Array])) };
  tf.dispose([r.value, x, y]);
  tf.dispose(r.grads);
  return out;
}

const lean: Grads = (f, vars) => leanVariableGrads(f as () => tf.Scalar, vars as tf.Variable[]);

for (const setup of ["every parameter", "recomputed blocks", "LoRA A and B"] as const) {
  for (const [impl, lossBatch] of [["plain", calcLossBatch], ["fused", calcLossBatchFused]] as const) {
    test(`lean backward pass = tf.variableGrads bit for bit (${setup}, ${impl} loss, dropout 0.1), no leaks`, () => {
      const model = deterministicModel(cfg);
      if (setup === "LoRA A and B") {
        model.applyLoRA({ rank: 2, alpha: 4 });
        for (const [n, v] of model.trainableParams()) if (n.endsWith(".B")) v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", 3));
      }
      model.recomputeActivations = setup === "recomputed blocks";
      const plain = lossAndGrads(model, lossBatch, tf.variableGrads);
      const start = tf.memory().numTensors;
      const ours = lossAndGrads(model, lossBatch, lean);
      assert.equal(tf.memory().numTensors, start, "the lean backward pass leaked tensors");
      assert.equal(ours.loss, plain.loss);
      assert.deepEqual([...ours.grads.keys()], [...plain.grads.keys()]);
      for (const [n, g] of plain.grads) assert.deepEqual(ours.grads.get(n), g, `d${n} differs`);
      model.dispose();
    });
  }
}

test("the lean backward pass peaks lower than TF.js's own (bytes of tensor data); switched off, it is TF.js's own", async () => {
  const model = deterministicModel({ ...cfg, embDim: 16, nLayers: 4, dropRate: 0 });
  const vars = [...model.params.values()];
  const x = tf.tensor2d(inputs, undefined, "int32");
  const y = tf.tensor2d(targets, undefined, "int32");
  // bytes of tensor data above what is held before the step (the weights, the batch)
  const peak = (grads: Grads) =>
    peakBufferBytes(() => {
      const r = grads(() => calcLossBatch(model, x, y, true), vars);
      tf.dispose([r.value, ...Object.values(r.grads)]);
    });
  // as in a fresh process, before any tape has run (tfjs-core makes `state.activeTape` only then)
  delete (tf.engine() as unknown as { state: { activeTape?: unknown } }).state.activeTape;
  const leanPeak = await peak(lean);
  const plainPeak = await peak(tf.variableGrads);
  assert.ok(leanPeak < 0.6 * plainPeak, `peak ${leanPeak} bytes above the weights, against TF.js's ${plainPeak}`);
  LEAN_BACKPROP.on = false; // COURSE_LEAN_BACKPROP=0: the plain twin, TF.js's own pass
  try {
    assert.equal(await peak(lean), plainPeak);
  } finally {
    LEAN_BACKPROP.on = true;
  }
  tf.dispose([x, y]);
  model.dispose();
});

test("recordLoss: the loss before the backward pass; each gradient handed over once, final, as backward() would return it; discard frees the tape", () => {
  for (const lean of [true, false]) {
    LEAN_BACKPROP.on = lean; // COURSE_LEAN_BACKPROP=0: tf.variableGrads at once, handed over after
    try {
      const model = deterministicModel({ ...cfg, dropRate: 0 });
      const vars = [...model.params.values()];
      const x = tf.tensor2d(inputs, undefined, "int32");
      const y = tf.tensor2d(targets, undefined, "int32");
      const expected = lossAndGrads(model, calcLossBatchFused, tf.variableGrads);
      const start = tf.memory().numTensors;
      const recorded = recordLoss(() => calcLossBatchFused(model, x, y, true), vars);
      assert.equal(recorded.value.dataSync()[0], expected.loss);
      const seen = new Map<string, Float32Array>();
      const named = [...model.params].map(([n, v]) => [v.name, n]);
      const nameOf = new Map(named as [string, string][]);
      const returned = recorded.backward((v, g) => {
        const n = nameOf.get(v.name) as string;
        assert.ok(!seen.has(n), `${n} handed over twice`);
        seen.set(n, g.dataSync() as Float32Array);
      });
      assert.deepEqual(Object.keys(returned), []);
      assert.deepEqual([...seen.keys()].sort(), [...expected.grads.keys()].sort());
      for (const [n, g] of expected.grads) assert.deepEqual(seen.get(n), g, `d${n} (lean ${lean})`);
      recorded.value.dispose();
      assert.equal(tf.memory().numTensors, start, `lean ${lean}: tensors left behind`);
      const dropped = recordLoss(() => calcLossBatchFused(model, x, y, true), vars);
      dropped.discard();
      dropped.value.dispose();
      assert.equal(tf.memory().numTensors, start, `lean ${lean}: a discarded tape left tensors behind`);
      tf.dispose([x, y]);
      model.dispose();
    } finally {
      LEAN_BACKPROP.on = true;
    }
  }
});
