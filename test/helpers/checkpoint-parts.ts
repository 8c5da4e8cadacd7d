/**
 * Numbered training checkpoints for the kill tests (test/checkpoint-kill.test.ts and its child
 * test/helpers/save-then-die.ts): checkpoint `i` holds the value `i` in every part — model
 * weight, optimizer step and moments, loop position, history, options — so a checkpoint that
 * loads with a mix of two saves, or with a half-written part, is caught.
 */
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import type { GPTConfig } from "../../lib/model/config";
import { GPTModel } from "../../lib/model/gpt";
import { AdamW, SavedTensor } from "../../lib/train/adamw";
import type { LoadedCheckpoint } from "../../lib/train/checkpoint";

/** Small enough that one checkpoint (model + AdamW moments) is about 1 MB and saves in milliseconds. */
export const CHECKPOINT_CFG: GPTConfig = { vocabSize: 1000, contextLength: 32, embDim: 32, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };

export function checkpointModel(): { model: GPTModel; optimizer: AdamW } {
  const model = new GPTModel(CHECKPOINT_CFG, { seed: 1, init: "zeros" });
  return { model, optimizer: new AdamW(model.params, { lr: 1e-3 }) };
}

/** Sets model and optimizer to checkpoint `i`'s values; returns what `saveCheckpoint` takes. */
export async function checkpointParts(model: GPTModel, optimizer: AdamW, i: number) {
  const shift = model.param("finalNorm.shift");
  shift.assign(tf.fill(shift.shape, i));
  const moments: Record<string, SavedTensor> = {};
  for (const [name, p] of model.params) moments[name] = { shape: p.shape.slice(), data: new Float32Array(p.size).fill(i) };
  optimizer.importState({ ...(await optimizer.exportState()), step: i, m: moments, v: moments });
  return {
    model,
    optimizer,
    position: { epoch: i, batch: 0, globalStep: i, tokensSeen: 10 * i, evalCount: i },
    history: { trainLosses: [i], valLosses: [i], tokensSeen: [10 * i], steps: [i], epochsAt: [i] },
    options: { checkpoint: i },
  };
}

/** Asserts that every part of `loaded` is checkpoint `i`'s, and returns `i` for convenience. */
export function assertCheckpointIs(loaded: LoadedCheckpoint, i: number): number {
  const { state, optimizerState, model } = loaded;
  assert.equal(state.position.globalStep, i, "state.json's position");
  assert.deepEqual(state.history.trainLosses, [i], "state.json's history");
  assert.deepEqual(state.options, { checkpoint: i }, "state.json's options");
  assert.equal(optimizerState.step, i, "the optimizer's step");
  assert.equal(Object.keys(optimizerState.m).length, model.params.size, "one first moment per parameter");
  for (const store of [optimizerState.m, optimizerState.v]) {
    for (const [name, t] of Object.entries(store)) {
      assert.ok(t.data.every((x) => x === i), `optimizer moment ${name} is not checkpoint ${i}'s`);
    }
  }
  assert.ok(model.param("finalNorm.shift").dataSync().every((x) => x === i), "the model's finalNorm.shift");
  assert.ok(model.param("tokEmb.weight").dataSync().every((x) => x === 0), "the model's tokEmb.weight");
  return i;
}
