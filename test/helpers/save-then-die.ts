/**
 * Child process for test/weights-kill.test.ts: saves a model, then gets killed with SIGKILL
 * (`kill -9`, no cleanup, no finally blocks) while saving again.
 *
 *   save-then-die.ts <dir> mid-write   first save completes and is copied to <dir>-first; the
 *                                      second save kills itself halfway through model.safetensors
 *   save-then-die.ts <dir> loop        saves changed weights forever, printing "saved <i>";
 *                                      the parent kills it at a moment of its choosing
 *
 * Training checkpoints (lib/train/checkpoint.ts, for test/checkpoint-kill.test.ts), numbered
 * as in test/helpers/checkpoint-parts.ts:
 *   save-then-die.ts <run> checkpoint-loop <i>       saves checkpoints i, i+1, … forever, printing "saved <i>"
 *   save-then-die.ts <run> checkpoint-<point> <i>    saves checkpoint i and kills itself at <point>:
 *       model        halfway through the model's safetensors
 *       optimizer    after the model, before the optimizer file
 *       swap         between the two renames (the previous checkpoint is only in checkpoint.old)
 *       last-rename  just before the rename that puts the new checkpoint in place
 */
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine";
import { GPTModel } from "../../lib/model/gpt";
import { saveGPT2Directory } from "../../lib/weights/gpt2-directory";
import { saveCheckpoint } from "../../lib/train/checkpoint";
import { checkpointModel, checkpointParts } from "./checkpoint-parts";

const [dir, mode, arg] = process.argv.slice(2);
const die = (): never => {
  process.kill(process.pid, "SIGKILL");
  throw new Error("unreachable");
};

async function checkpointMain(): Promise<void> {
  const { model, optimizer } = checkpointModel();
  const first = Number(arg);
  if (mode === "checkpoint-loop") {
    for (let i = first; ; i++) {
      await saveCheckpoint(dir, await checkpointParts(model, optimizer, i));
      process.stdout.write(`saved ${i}\n`);
    }
  }
  const point = mode.slice("checkpoint-".length);
  const parts = await checkpointParts(model, optimizer, first);
  if (point === "model") {
    const param = model.param.bind(model);
    model.param = (name: string) => (name === "blocks.1.ff.fc1.weight" ? die() : param(name));
  } else if (point === "optimizer") {
    optimizer.exportState = die;
  } else if (point === "swap" || point === "last-rename") {
    // patch the CommonJS module object itself (an `import * as` namespace is a read-only copy):
    // checkpoint.ts looks renameSync up on it at each call, so it calls this wrapper
    const nodeFs = require("node:fs") as typeof fs;
    const rename = nodeFs.renameSync;
    nodeFs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
      const intoPlace = String(to).endsWith("checkpoint") && String(from).includes("checkpoint.tmp-");
      if (point === "last-rename" && intoPlace) die();
      rename(from, to);
      if (point === "swap" && String(to).endsWith("checkpoint.old")) die();
    };
  } else {
    throw new Error(`save-then-die: unknown mode ${mode}`);
  }
  await saveCheckpoint(dir, parts);
  throw new Error(`save-then-die: ${mode} did not die`);
}

async function main(): Promise<void> {
  await initEngine({ log: () => {} });
  if (mode.startsWith("checkpoint-")) return checkpointMain();
  const cfg = { vocabSize: 3000, contextLength: 32, embDim: 64, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };
  const model = new GPTModel(cfg, { seed: 1, init: "zeros" });
  await saveGPT2Directory(model, dir);
  if (mode === "mid-write") {
    fs.cpSync(dir, `${dir}-first`, { recursive: true });
    model.param("tokEmb.weight").assign(tf.onesLike(model.param("tokEmb.weight")));
    // die halfway through writing the temporary model file: the writer reads every parameter first,
    // then writes the file in pieces; patch the CommonJS fs module itself (the writer looks writeSync
    // up on it at each call) and kill on the piece that crosses half the size of the first save
    const nodeFs = require("node:fs") as typeof fs;
    const writeSync = nodeFs.writeSync as (...args: unknown[]) => number;
    const half = fs.statSync(`${dir}/model.safetensors`).size / 2;
    let written = 0;
    (nodeFs as { writeSync: unknown }).writeSync = (...args: unknown[]) => {
      const n = writeSync(...args);
      written += n;
      if (written > half) process.kill(process.pid, "SIGKILL");
      return n;
    };
    await saveGPT2Directory(model, dir);
    return;
  }
  for (let i = 1; ; i++) {
    model.param("finalNorm.shift").assign(tf.fill([cfg.embDim], i));
    await saveGPT2Directory(model, dir);
    process.stdout.write(`saved ${i}\n`);
  }
}

main();
