// finetune --lora-rank, spawned as a user would, from a saved base model: the book's three count
// lines; the model saved merged (a plain GPT-2 folder) computes the same loss as the base with the
// saved adapter applied again, and the same as transformers computes on that folder; a LoRA run
// stopped after epoch 1 and resumed equals an uninterrupted one, with moments for A and B alone.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTConfig, TINY } from "../lib/model/config";
import { GPTModel, countParams } from "../lib/model/gpt";
import { countLoRAParams } from "../lib/model/lora";
import { calcLossBatch } from "../lib/train/loss";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, loadLoRAAdapter } from "../lib/weights/lora-adapter";
import { readSafetensors } from "../lib/weights/safetensors-read";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const FINETUNE = path.join(ROOT, "lib", "cli", "finetune.ts");
const HF_LOSS = path.join(ROOT, "test", "reference", "hf_transformers_loss.py");
const VENV_PYTHON = path.join(ROOT, ".cache", "venv", "bin", "python");
const ENV = { ...process.env, HF_HUB_OFFLINE: "1", COURSE_NO_STATIC_IMAGE: "1" };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-lora-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cfg: GPTConfig = { ...TINY, embDim: 8, nLayers: 1, nHeads: 2, contextLength: 256 };
const baseDir = path.join(tmp, "base");
const RANK = 2;
const common = [
  "--weights", baseDir, "--lora-rank", String(RANK), "--lora-alpha", "8", "--limit", "30", "--batch-size", "4",
  "--eval-freq", "2", "--eval-iter", "1", "--lr", "0.01", "--response-tokens", "2",
];
// a fixed batch to compare losses on: (2, 6) token ids, the last two targets of row 1 ignored
const batch = { inputs: [[21106, 318, 281, 12064, 326, 8477], [14, 2, 50256, 91, 3, 777]], targets: [[318, 281, 12064, 326, 8477, 257], [2, 50256, 91, 3, -100, -100]] };

function finetune(args: string[]) {
  const r = spawnSync(TSX, [FINETUNE, ...args], { cwd: ROOT, encoding: "utf8", env: ENV, timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  return r.stdout;
}
const history = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "loss-history.json"), "utf8"));

function lossOf(model: GPTModel): number {
  return tf.tidy(() => calcLossBatch(model, tf.tensor2d(batch.inputs, undefined, "int32"), tf.tensor2d(batch.targets, undefined, "int32")).dataSync()[0]);
}

before(async () => {
  await initEngine({ log: () => {} });
  const base = new GPTModel(cfg, { seed: 5 });
  await saveGPT2Directory(base, baseDir);
  base.dispose();
});

/** A Python with torch and transformers: $COURSE_HF_PYTHON, else the venv .ci/run makes. */
function transformersPython(): string | undefined {
  for (const py of [process.env.COURSE_HF_PYTHON, VENV_PYTHON]) {
    if (py && spawnSync(py, ["-c", "import transformers, torch"], { encoding: "utf8" }).status === 0) return py;
  }
  return undefined;
}

const full = path.join(tmp, "full");

test("finetune --lora-rank prints the book's counts, saves the model merged and the adapter beside it", async (t) => {
  const out = finetune([...common, "--epochs", "2", "--out", full]);
  const n = (x: number) => x.toLocaleString("en-US");
  assert.match(out, new RegExp(`Total trainable parameters before: ${n(countParams(cfg))}\\n`));
  assert.match(out, /Total trainable parameters after: 0\n/);
  assert.match(out, new RegExp(`Total trainable LoRA parameters: ${n(countLoRAParams(cfg, RANK))}\\n`));
  assert.ok(countParams(cfg) >= 1000 && countLoRAParams(cfg, RANK) >= 1000, "both counts need a thousands separator");

  const adapterDir = path.join(full, "lora-adapter");
  const adapterConfig = JSON.parse(fs.readFileSync(path.join(adapterDir, ADAPTER_CONFIG_FILE), "utf8"));
  assert.equal(adapterConfig.rank, RANK);
  assert.equal(adapterConfig.alpha, 8);
  assert.equal(adapterConfig.targets.length, 6 * cfg.nLayers + 1);
  const adapterBytes = fs.statSync(path.join(adapterDir, ADAPTER_WEIGHTS_FILE)).size;
  const modelBytes = fs.statSync(path.join(full, "model", "model.safetensors")).size;
  assert.ok(adapterBytes * 5 < modelBytes, `the adapter (${adapterBytes} B) should be a small part of the model (${modelBytes} B)`);

  const merged = await loadGPT2Directory(path.join(full, "model"));
  const base = await loadGPT2Directory(baseDir);
  const baseLoss = lossOf(base);
  loadLoRAAdapter(base, adapterDir);
  const mergedLoss = lossOf(merged);
  const reapplied = lossOf(base);
  assert.ok(Math.abs(mergedLoss - baseLoss) > 1e-3, `training did not change the model (${mergedLoss} vs base ${baseLoss})`);
  assert.ok(Math.abs(mergedLoss - reapplied) < 1e-5, `merged ${mergedLoss} vs base + adapter ${reapplied}`);
  merged.dispose();
  base.dispose();

  const python = transformersPython();
  if (python === undefined) {
    assert.notEqual(process.env.CI, "true", "CI installs transformers (.ci/run): the merged model must be checked there");
    t.diagnostic("no Python with transformers and torch (set COURSE_HF_PYTHON, or make .cache/venv as .ci/run does): the transformers check was skipped");
    return;
  }
  const r = spawnSync(python, [HF_LOSS, path.join(full, "model"), JSON.stringify(batch)], { encoding: "utf8", timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const hf = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  assert.ok(Math.abs(hf.loss - mergedLoss) < 1e-4, `transformers ${hf.transformers}: loss ${hf.loss} vs ours ${mergedLoss}`);
});

test("a LoRA run: 1 epoch + --resume --epochs 2 equals 2 epochs straight; the checkpoint keeps base and adapter apart", () => {
  const part = path.join(tmp, "part");
  finetune([...common, "--epochs", "1", "--out", part]);
  const checkpoint = path.join(part, "checkpoint");
  assert.ok(fs.existsSync(path.join(checkpoint, "lora-adapter", ADAPTER_WEIGHTS_FILE)));
  const moments = [...readSafetensors(path.join(checkpoint, "optimizer.safetensors")).keys()];
  assert.equal(moments.length, 4 * (6 * cfg.nLayers + 1), "m and v for every A and B");
  assert.ok(moments.every((k) => /\.lora\.[AB]$/.test(k)), `moments for frozen weights: ${moments.filter((k) => !/\.lora\./.test(k))}`);
  const out = finetune(["--resume", part, "--epochs", "2"]);
  assert.match(out, /LoRA: rank 2, alpha 8: [\d,]+ trainable parameters \(from the checkpoint\)/);
  const a = history(full);
  const b = history(part);
  assert.deepEqual(b.steps, a.steps);
  a.trainLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.trainLosses[i]) < 1e-5, `train loss ${i}: ${b.trainLosses[i]} vs ${x}`));
  a.valLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.valLosses[i]) < 1e-5, `val loss ${i}: ${b.valLosses[i]} vs ${x}`));
});
