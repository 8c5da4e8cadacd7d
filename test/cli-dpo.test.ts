// `npm run dpo`: --loss-only prints what the book's DPO code computes (test/reference/dpo_hf_reference.py) on two
// random checkpoints written by transformers at test time (a fresh seed each run: no fixture can have seen them);
// a short training run writes the history, the plots, the responses before and after and a model transformers
// loads; LoRA DPO uses the weights with the adapter off as the reference; bad input is one line and exit 1.
import { test, before, after, TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import type { GPTConfig } from "../lib/model/config";
import { loadPreferenceData } from "../lib/data/preference-data";
import { PreferenceDataset } from "../lib/data/preference-dataset";
import { calcLossBatch } from "../lib/train/loss";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { deterministicModel } from "./helpers/deterministic-weights";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const VENV_PYTHON = path.join(ROOT, ".cache", "venv", "bin", "python");
const MICRO: GPTConfig = { vocabSize: 50257, contextLength: 256, embDim: 16, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-dpo-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A Python with torch and transformers: $COURSE_HF_PYTHON, else the venv .ci/run makes; null without. */
function hfPython(): string | null {
  for (const py of [process.env.COURSE_HF_PYTHON, VENV_PYTHON]) {
    if (py && spawnSync(py, ["-c", "import torch, transformers"], { stdio: "ignore" }).status === 0) return py;
  }
  return null;
}

/** Without such a Python: skipped here, a failure under CI (which makes one). */
function skipOffCi(t: TestContext): void {
  const why = "no Python with torch and transformers (set COURSE_HF_PYTHON, or make .cache/venv as .ci/run does)";
  if (process.env.CI === "true") assert.fail(why);
  t.skip(why);
}

function dpo(args: string[]) {
  return spawnSync(TSX, [path.join(ROOT, "lib", "cli", "dpo.ts"), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, COURSE_NO_STATIC_IMAGE: "1" },
    timeout: 300_000,
  });
}

/** A one-line error and exit code 1. */
function failsWith(args: string[], message: RegExp): void {
  const r = dpo(args);
  assert.equal(r.status, 1, `exit ${r.status}: ${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("engine: "));
  assert.equal(lines.length, 1, `one line: ${r.stderr}`);
  assert.match(lines[0], message);
}

const policyDir = path.join(tmp, "policy");
const referenceDir = path.join(tmp, "reference");

before(async () => {
  await initEngine({ log: () => {} });
  const policy = deterministicModel(MICRO);
  await saveGPT2Directory(policy, policyDir);
  const reference = deterministicModel(MICRO, { salt: "reference:" });
  await saveGPT2Directory(reference, referenceDir);
  tf.disposeVariables();
});

test("--loss-only prints the book's DPO loss, rewards and margin on random transformers checkpoints within 1e-4", async (t) => {
  const py = hfPython();
  if (py === null) return skipOffCi(t);
  const entries = (await loadPreferenceData()).slice(100, 121); // 21 entries: batches of 8, 8 and a short 5
  const data = path.join(tmp, "pref.json");
  fs.writeFileSync(data, JSON.stringify(entries));
  const seed = Date.now() % 1_000_000;
  const dir = path.join(tmp, `hf-${seed}`);
  const job = path.join(tmp, "job.json");
  const config = { n_positions: 128, n_embd: 32, n_layer: 2, n_head: 4, initializer_range: 0.3 };
  fs.writeFileSync(job, JSON.stringify({ seed, dir, config, encoded: new PreferenceDataset(entries).encoded, batchSize: 8, beta: 0.1 }));
  const ref = spawnSync(py, [path.join(ROOT, "test", "reference", "dpo_hf_reference.py"), job], { encoding: "utf8", timeout: 240_000 });
  assert.equal(ref.status, 0, ref.stderr.slice(-2000));
  const theirs = JSON.parse(ref.stdout.trim().split("\n").pop() as string);
  assert.equal(theirs.batches, 3);
  const r = dpo(["--weights", path.join(dir, "policy"), "--reference", path.join(dir, "reference"), "--data", data, "--loss-only"]);
  assert.equal(r.status, 0, r.stderr);
  const m = /^DPO loss: (\S+)\nchosen reward: (\S+)\nrejected reward: (\S+)\nreward margin: (\S+)\n$/.exec(r.stdout);
  assert.ok(m, `stdout was ${JSON.stringify(r.stdout)}`);
  const ours = m.slice(1).map(Number);
  t.diagnostic(`seed ${seed}: ours ${ours.join(", ")}; transformers ${theirs.transformers}: ${[theirs.loss, theirs.chosenReward, theirs.rejectedReward, theirs.margin].join(", ")}`);
  [theirs.loss, theirs.chosenReward, theirs.rejectedReward, theirs.margin].forEach((x: number, i: number) =>
    assert.ok(Math.abs(ours[i] - x) < 1e-4, `line ${i + 1}: ${ours[i]} vs ${x}`),
  );
  // Two different checkpoints give rewards far from zero; the margin (and so loss - log 2) can be near zero by chance.
  assert.ok(Math.abs(theirs.chosenReward) > 1e-3 && Math.abs(theirs.rejectedReward) > 1e-3, `the checkpoints should disagree: rewards ${theirs.chosenReward}, ${theirs.rejectedReward}`);
});

test("a short run writes the history, both plots, the responses before and after, and a model transformers loads", async (t) => {
  const out = path.join(tmp, "run");
  const r = dpo(["--weights", policyDir, "--limit", "40", "--batch-size", "4", "--eval-freq", "2", "--eval-iter", "1", "--lr", "0.003", "--response-tokens", "2", "--out", out]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /reference: a separate frozen copy of the starting weights\n/);
  assert.match(r.stdout, /^Ep 1 \(Step 000000\): Train loss \d\.\d{3}, Val loss \d\.\d{3}, Train reward margins -?\d\.\d{3}, Val reward margins -?\d\.\d{3}$/m);
  assert.match(r.stdout, /Training completed in \d+\.\d\d minutes\./);
  for (const f of ["run.json", "dpo-history.json", "dpo-loss.html", "dpo-reward-margins.html", "dpo-responses.json", "model/config.json", "model/model.safetensors"]) {
    assert.ok(fs.existsSync(path.join(out, f)), `${f} missing`);
  }
  const history = JSON.parse(fs.readFileSync(path.join(out, "dpo-history.json"), "utf8"));
  assert.deepEqual(history.steps, [0, 2, 4, 6]); // 34 training entries: 8 batches of 4
  assert.equal(history.trainRewardMargins.length, 4);
  assert.ok(history.trainRewardMargins[3] > history.trainRewardMargins[0], `margins ${history.trainRewardMargins}`);
  const responses = JSON.parse(fs.readFileSync(path.join(out, "dpo-responses.json"), "utf8"));
  assert.equal(responses.length, 5); // the first 3 of validation (which has 2 of the 40 entries) and of test (4)
  assert.ok(responses.every((e: Record<string, unknown>) => typeof e.reference_response === "string" && typeof e.policy_response === "string"));
  assert.match(fs.readFileSync(path.join(out, "dpo-reward-margins.html"), "utf8"), /Training reward margins/);

  const tuned = await loadGPT2Directory(path.join(out, "model"));
  const batch = { inputs: [[21106, 318, 281, 12064, 326, 8477]], targets: [[318, 281, 12064, 326, 8477, 257]] };
  const x = tf.tensor2d(batch.inputs, undefined, "int32");
  const y = tf.tensor2d(batch.targets, undefined, "int32");
  const ours = calcLossBatch(tuned, x, y).dataSync()[0];
  tf.dispose([x, y]);
  tuned.dispose();
  const py = hfPython();
  if (py === null) return skipOffCi(t);
  const hf = spawnSync(py, [path.join(ROOT, "test", "reference", "hf_transformers_loss.py"), path.join(out, "model"), JSON.stringify(batch)], { encoding: "utf8", timeout: 240_000 });
  assert.equal(hf.status, 0, hf.stderr.slice(-2000));
  const theirs = JSON.parse(hf.stdout.trim().split("\n").pop() as string);
  assert.ok(Math.abs(theirs.loss - ours) < 1e-4, `transformers ${theirs.loss} vs ours ${ours}`);
});

test("LoRA DPO: the reference is the weights with the adapter off, the adapter is saved beside the merged model", () => {
  const out = path.join(tmp, "lora");
  const r = dpo(["--weights", policyDir, "--lora-rank", "2", "--limit", "30", "--batch-size", "4", "--eval-freq", "3", "--eval-iter", "1", "--lr", "0.01", "--response-tokens", "2", "--out", out]);
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /reference: the policy with its LoRA adapter switched off \(no second copy of the weights\)\n/);
  assert.match(r.stdout, /Total trainable LoRA parameters: [\d,]+\n/);
  assert.match(r.stdout, /^Ep 1 \(Step 000003\): Train loss \d\.\d{3}/m);
  assert.ok(fs.existsSync(path.join(out, "lora-adapter")) && fs.existsSync(path.join(out, "model", "model.safetensors")));
});

test("bad input: a missing or empty response, a reference of another shape, a bad beta — one line, exit 1", async () => {
  const good = { instruction: "Say hi.", input: "", output: "Hi.", chosen: "Hello!", rejected: "What?" };
  const { chosen: _c, ...noChosen } = good;
  const missing = path.join(tmp, "missing.json");
  fs.writeFileSync(missing, JSON.stringify([good, good, noChosen]));
  failsWith(["--weights", policyDir, "--data", missing, "--loss-only"], /^error: .*missing\.json: entry 2: field "chosen" is missing$/);
  const empty = path.join(tmp, "empty.json");
  fs.writeFileSync(empty, JSON.stringify([good, { ...good, rejected: "" }]));
  failsWith(["--weights", policyDir, "--data", empty, "--out", path.join(tmp, "never")], /^error: .*empty\.json: entry 1: field "rejected" is empty$/);
  assert.ok(!fs.existsSync(path.join(tmp, "never")), "a failed start leaves no run folder");
  const wide = path.join(tmp, "wide");
  await saveGPT2Directory(deterministicModel({ ...MICRO, embDim: 8 }), wide);
  tf.disposeVariables();
  failsWith(["--weights", policyDir, "--reference", wide, "--limit", "8", "--loss-only"], /^error: --reference .*wide: the reference model \(.*embDim 8.*\) is not the policy's architecture \(.*embDim 16.*\): embDim differ \(--weights .*policy\)$/);
  failsWith(["--weights", policyDir, "--beta", "0", "--limit", "8", "--loss-only"], /^error: DPO: beta must be a number > 0 \(the book: 0\.1 to 0\.5\), got 0$/);
  failsWith(["--weights", path.join(tmp, "nowhere"), "--loss-only", "--limit", "8"], /^error: .*nowhere: folder not found$/);
});
