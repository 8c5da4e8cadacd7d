// The HF loader against an independent reference: a tiny checkpoint in transformers' layout
// (transformer.* names, fused c_attn, mask buffers, tied head), written by
// test/reference/hf_gpt2_reference.py together with the logits of transformers' GPT-2
// forward pass on it. Loading it here must give the same logits within 1e-4.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { tempDir } from "./helpers/hf-checkpoint";

const FIXTURE_DIR = path.join(__dirname, "fixtures", "hf-gpt2-tiny");
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "hf-gpt2-tiny-golden.json"), "utf8")) as {
  inputs: number[][];
  logits: number[][][];
  argmax: number[][];
};

before(async () => {
  await initEngine({ log: () => {} });
});

function maxAbsDiff(a: number[][][], b: number[][][]): number {
  let worst = 0;
  a.forEach((rows, i) => rows.forEach((row, j) => row.forEach((v, k) => {
    worst = Math.max(worst, Math.abs(v - b[i][j][k]));
  })));
  return worst;
}

async function run(dir: string): Promise<number[][][]> {
  const model = await loadGPT2Directory(dir);
  const ids = tf.tensor2d(golden.inputs, undefined, "int32");
  const out = model.forward(ids);
  const logits = (await out.array()) as number[][][];
  tf.dispose([ids, out]);
  model.dispose();
  return logits;
}

test("logits of the loaded HF checkpoint match transformers' forward pass within 1e-4", async () => {
  const logits = await run(FIXTURE_DIR);
  const diff = maxAbsDiff(logits, golden.logits);
  assert.ok(diff < 1e-4, `max |difference| ${diff}`);
  const argmax = logits.map((rows) => rows.map((row) => row.indexOf(Math.max(...row))));
  assert.deepEqual(argmax, golden.argmax);
});

test("saving the loaded model and loading it again keeps the reference logits", async () => {
  const dir = tempDir("golden");
  try {
    const model = await loadGPT2Directory(FIXTURE_DIR);
    await saveGPT2Directory(model, dir);
    model.dispose();
    assert.ok(maxAbsDiff(await run(dir), golden.logits) < 1e-4);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
