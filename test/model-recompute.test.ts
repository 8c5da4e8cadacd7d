// Activation recomputation (lib/model/recompute.ts) gives the plain pass's loss and every gradient,
// with dropout on (the recomputed pass replays the same masks), for a full model and for LoRA's A and
// B, with the plain and the fused loss; and it leaves no tensors behind.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { Rng } from "../lib/core/random";
import { calcLossBatch } from "../lib/train/loss";
import { calcLossBatchFused } from "../lib/train/fused-loss";
import { deterministicModel } from "./helpers/deterministic-weights";

const cfg: GPTConfig = { vocabSize: 23, contextLength: 8, embDim: 8, nHeads: 2, nLayers: 3, dropRate: 0.1, qkvBias: true };
const inputs = [[3, 7, 1, 18, 5, 0, 9], [11, 2, 9, 4, 4, 16, 22]];
const targets = [[7, 1, 18, 5, 0, 2, 4], [2, 9, 4, 16, 22, -100, -100]];

before(async () => {
  await initEngine({ log: () => {} });
});

function lossAndGrads(model: GPTModel, lossBatch: typeof calcLossBatch): { loss: number; grads: Map<string, Float32Array> } {
  const x = tf.tensor2d(inputs, undefined, "int32");
  const y = tf.tensor2d(targets, undefined, "int32");
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n)!);
  const rngBefore = model.rng.state;
  const { value, grads } = tf.variableGrads(() => lossBatch(model, x, y, true), vars);
  model.rng = Rng.fromState(rngBefore); // the same dropout masks for the next run
  const out = { loss: value.dataSync()[0], grads: new Map(names.map((n, i) => [n, grads[vars[i].name].dataSync() as Float32Array])) };
  tf.dispose([value, x, y]);
  tf.dispose(grads);
  return out;
}

function assertSame(a: ReturnType<typeof lossAndGrads>, b: ReturnType<typeof lossAndGrads>, what: string): void {
  assert.ok(Math.abs(a.loss - b.loss) < 1e-6, `${what}: loss ${b.loss} vs ${a.loss}`);
  assert.equal(b.grads.size, a.grads.size, `${what}: number of gradients`);
  for (const [n, g] of a.grads) {
    const h = b.grads.get(n)!;
    for (let i = 0; i < g.length; i++) assert.ok(Math.abs(g[i] - h[i]) <= 1e-6 + 1e-4 * Math.abs(g[i]), `${what}: d${n}[${i}] ${h[i]} vs ${g[i]}`);
  }
}

for (const lora of [false, true]) {
  for (const [impl, lossBatch] of [["plain", calcLossBatch], ["fused", calcLossBatchFused]] as const) {
    test(`recomputed blocks give the plain loss and gradients (${lora ? "LoRA A and B" : "every parameter"}, ${impl} loss, dropout 0.1)`, () => {
      const model = deterministicModel(cfg);
      if (lora) {
        model.applyLoRA({ rank: 2, alpha: 4 });
        for (const [n, v] of model.trainableParams()) if (n.endsWith(".B")) v.assign(tf.randomNormal(v.shape, 0, 0.5, "float32", 3));
      }
      const plain = lossAndGrads(model, lossBatch);
      model.recomputeActivations = true;
      const start = tf.memory().numTensors;
      const recomputed = lossAndGrads(model, lossBatch);
      assert.equal(tf.memory().numTensors, start, "recomputation leaked tensors");
      assertSame(plain, recomputed, impl);
      model.dispose();
    });
  }
}
