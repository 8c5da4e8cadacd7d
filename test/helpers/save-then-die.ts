/**
 * Child process for test/weights-kill.test.ts: saves a model, then gets killed with SIGKILL
 * (`kill -9`, no cleanup, no finally blocks) while saving again.
 *
 *   save-then-die.ts <dir> mid-write   first save completes and is copied to <dir>-first; the
 *                                      second save kills itself halfway through model.safetensors
 *   save-then-die.ts <dir> loop        saves changed weights forever, printing "saved <i>";
 *                                      the parent kills it at a moment of its choosing
 */
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine";
import { GPTModel } from "../../lib/model/gpt";
import { saveGPT2Directory } from "../../lib/model/weights";

const [dir, mode] = process.argv.slice(2);

async function main(): Promise<void> {
  await initEngine({ log: () => {} });
  const cfg = { vocabSize: 3000, contextLength: 32, embDim: 64, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };
  const model = new GPTModel(cfg, { seed: 1, init: "zeros" });
  await saveGPT2Directory(model, dir);
  if (mode === "mid-write") {
    fs.cpSync(dir, `${dir}-first`, { recursive: true });
    const param = model.param.bind(model);
    // die while the writer fetches a tensor from the middle of the file
    model.param = (name: string) => {
      if (name === "blocks.1.ff.fc1.weight") process.kill(process.pid, "SIGKILL");
      return param(name);
    };
    model.param("tokEmb.weight").assign(tf.onesLike(model.param("tokEmb.weight")));
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
