// A checkpoint keeps the run's drop rate: a run resumed from it trains with the same dropout.
// (Loading the model folder alone gives the caller's rate, the book's 0.0 by default, as it
// must for pretrained GPT-2, whose config.json says 0.1.)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import { GPTModel } from "../lib/model/gpt";
import { AdamW } from "../lib/train/adamw";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint";
import { loadGPT2Directory } from "../lib/weights/gpt2-directory";
import { CHECKPOINT_CFG } from "./helpers/checkpoint-parts";
import { tempDir } from "./helpers/hf-checkpoint";

const root = tempDir("checkpoint-dropout");
before(async () => {
  await initEngine({ log: () => {} });
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

const position = { epoch: 1, batch: 0, globalStep: 3, tokensSeen: 30, evalCount: 1 };
const history = { trainLosses: [1], valLosses: [1], tokensSeen: [30], steps: [3], epochsAt: [3] };

test("a checkpoint of a run with dropout 0.1 resumes with dropout 0.1; its config.json says so in transformers' names", async () => {
  const run = path.join(root, "run");
  const model = new GPTModel({ ...CHECKPOINT_CFG, dropRate: 0.1 }, { seed: 5 });
  await saveCheckpoint(run, { model, optimizer: new AdamW(model.params, { lr: 1e-3 }), position, history, options: {} });
  model.dispose();

  const loaded = await loadCheckpoint(run);
  assert.equal(loaded.model.cfg.dropRate, 0.1);
  assert.equal(loaded.state.dropRate, 0.1);
  loaded.model.dispose();
  const config = JSON.parse(fs.readFileSync(path.join(run, "checkpoint", "model", "config.json"), "utf8"));
  assert.deepEqual([config.resid_pdrop, config.embd_pdrop, config.attn_pdrop], [0.1, 0.1, 0.1]);

  // the folder alone, as for fine-tuning pretrained weights: the caller's rate, not the file's
  const plain = await loadGPT2Directory(path.join(run, "checkpoint", "model"));
  assert.equal(plain.cfg.dropRate, 0);
  plain.dispose();
});

test("a checkpoint saved before state.json kept the rate takes it from the model's config.json", async () => {
  const run = path.join(root, "older");
  const model = new GPTModel({ ...CHECKPOINT_CFG, dropRate: 0.2 }, { seed: 5 });
  await saveCheckpoint(run, { model, optimizer: new AdamW(model.params, { lr: 1e-3 }), position, history, options: {} });
  model.dispose();
  const stateFile = path.join(run, "checkpoint", "state.json");
  const { dropRate, ...older } = JSON.parse(fs.readFileSync(stateFile, "utf8"));
  assert.equal(dropRate, 0.2);
  fs.writeFileSync(stateFile, JSON.stringify(older));
  const loaded = await loadCheckpoint(run);
  assert.equal(loaded.model.cfg.dropRate, 0.2);
  loaded.model.dispose();
});
