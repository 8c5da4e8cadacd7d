// A model saved by `finetune` is a Hugging Face checkpoint: transformers' GPT2LMHeadModel.from_pretrained
// loads it (test/reference/hf_transformers_loss.py, in the venv .ci/run makes) and computes the same
// masked loss as the library on the same batch, within 1e-4. Runs on whatever engine COURSE_BACKEND picks.
import { test, after, TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { calcLossBatch } from "../lib/train/loss";
import { loadGPT2Directory } from "../lib/weights/gpt2-directory";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const VENV_PYTHON = path.join(ROOT, ".cache", "venv", "bin", "python");

/** A Python with torch and transformers: $COURSE_HF_PYTHON, else the venv .ci/run makes; null if neither imports them. */
function hfPython(): string | null {
  for (const py of [process.env.COURSE_HF_PYTHON, VENV_PYTHON]) {
    if (py && spawnSync(py, ["-c", "import torch, transformers"], { stdio: "ignore" }).status === 0) return py;
  }
  return null;
}

/** Without a Python with transformers: skipped here, a failure under CI (which makes one). */
function skipOffCi(t: TestContext): void {
  const why = "no Python with torch and transformers (set COURSE_HF_PYTHON, or make .cache/venv as .ci/run does)";
  if (process.env.CI === "true") assert.fail(why);
  t.skip(why);
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hf-transformers-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A micro GPT-2 (16 wide, 2 layers, 256 positions) fine-tuned for a few steps by `finetune` and saved: its model/ folder, made once. */
let saved: string | undefined;
function savedModel(): string {
  if (saved !== undefined) return saved;
  const config = path.join(tmp, "micro.json");
  fs.writeFileSync(config, JSON.stringify({ embDim: 16, nLayers: 2, nHeads: 2, contextLength: 256 }));
  const out = path.join(tmp, "run");
  const r = spawnSync(
    TSX,
    [path.join(ROOT, "lib", "cli", "finetune.ts"), "--model", config, "--limit", "24", "--epochs", "1", "--batch-size", "4", "--eval-freq", "50", "--eval-iter", "1", "--lr", "0.01", "--response-tokens", "2", "--out", out],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, HF_HUB_OFFLINE: "1", COURSE_NO_STATIC_IMAGE: "1" }, timeout: 240_000 },
  );
  assert.equal(r.status, 0, r.stderr + r.stdout);
  const modelDir = path.join(out, "model");
  saved = modelDir;
  return modelDir;
}

test("a model saved by finetune loads in Hugging Face transformers with the same loss (within 1e-4)", async (t) => {
  const py = hfPython();
  if (py === null) return skipOffCi(t);
  const modelDir = savedModel();

  // two rows over the whole vocabulary, the second padded the way the collate function pads
  const inputs = [Array.from({ length: 20 }, (_, i) => (7919 * i + 13) % 50257), Array.from({ length: 20 }, (_, i) => (104729 * i + 5) % 50257)];
  const targets = inputs.map((row) => [...row.slice(1), 50256]);
  targets[1].fill(-100, 14);

  const hf = spawnSync(py, [path.join(ROOT, "test", "reference", "hf_transformers_loss.py"), modelDir, JSON.stringify({ inputs, targets })], { encoding: "utf8", timeout: 240_000 });
  assert.equal(hf.status, 0, hf.stderr);
  const theirs = JSON.parse(hf.stdout.trim().split("\n").pop()!) as { loss: number; tied: boolean; transformers: string };

  await initEngine({ log: () => {} });
  const model = await loadGPT2Directory(modelDir);
  const x = tf.tensor2d(inputs, undefined, "int32");
  const y = tf.tensor2d(targets, undefined, "int32");
  const loss = calcLossBatch(model, x, y);
  const ours = loss.dataSync()[0];
  tf.dispose([x, y, loss]);
  model.dispose();
  t.diagnostic(`loss: library ${ours.toFixed(6)} (${tf.getBackend()}), transformers ${theirs.transformers} ${theirs.loss.toFixed(6)}; head tied in transformers: ${theirs.tied}`);
  assert.ok(Number.isFinite(ours) && ours > 0);
  assert.ok(Math.abs(ours - theirs.loss) < 1e-4, `library ${ours} vs transformers ${theirs.loss}`);
});

test("bench --responses: our test-set responses and transformers' generate from the same saved folder are the same tokens", { timeout: 300_000 }, (t) => {
  const py = hfPython();
  if (py === null) return skipOffCi(t);
  const modelDir = savedModel();
  // 44 entries -> the book's split: 37 train, 4 test, 3 validation
  const data = path.join(tmp, "data.json");
  fs.writeFileSync(data, JSON.stringify(Array.from({ length: 44 }, (_, i) => ({ instruction: `Repeat the number ${i}.`, input: i % 3 ? "" : `n=${i}`, output: `${i} ${i}` }))));
  const r = spawnSync(
    TSX,
    [path.join(ROOT, "lib", "cli", "bench.ts"), "--responses", modelDir, "--data", data, "--max-new-tokens", "12", "--gen-batch", "2", "--vs-torch"],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, COURSE_HF_PYTHON: py }, timeout: 280_000 },
  );
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const line = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  t.diagnostic(`ours ${line.tokens} tokens in ${line.seconds} s, transformers ${line.transformers.tokens} in ${line.transformers.seconds} s`);
  assert.equal(line.responses, 4);
  assert.equal(line.batch, 2);
  assert.ok(line.tokens > 0 && line.tokens <= 4 * 12, `tokens ${line.tokens}`);
  assert.match(line.transformers.transformers, /^\d+\.\d+/);
  assert.equal(line.transformers.tokens, line.tokens);
  assert.equal(line.same_tokens, 4);
  assert.equal(typeof line.ratio.seconds, "number");
  assert.match(r.stderr, /torch: running test\/reference\/hf_responses\.py on the same 4 prompts/);
});
