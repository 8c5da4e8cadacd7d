// `npm run bench -- --dpo` (lib/cli/bench-dpo.ts): its argument handling, and both sides taking the same
// DPO steps on the same batches (its timings are measured by hand, not tested).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.join(__dirname, "..");
const BENCH = path.join(ROOT, "lib", "cli", "bench.ts");
const HF_VENV = path.join(ROOT, ".cache", "venv", "bin", "python");
const PYTHON = process.env.COURSE_HF_PYTHON || (fs.existsSync(HF_VENV) ? HF_VENV : process.env.COURSE_PYTHON || "python3");
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [...process.execArgv, BENCH, "--dpo", ...args], { encoding: "utf8", timeout: 280_000, env });
const lastLine = (stdout: string) => JSON.parse(stdout.trim().split("\n").pop() as string);

test("bench --dpo: an unknown config or a bad number is a one-line error and exit 1", () => {
  const r = run(["--config", "gpt2-huge"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: --config: unknown "gpt2-huge"; choose one of bench-tiny, gpt2-small, gpt2-medium$/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  const s = run(["--steps", "0"]);
  assert.equal(s.status, 1);
  assert.match(s.stderr, /error: --steps must be an integer >= 1, got "0"/);
});

test("bench --dpo --vs-torch: full and LoRA DPO steps on the same batches as the book's code, ln 2 first on both sides", { timeout: 600_000 }, (t) => {
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) {
    assert.notEqual(process.env.CI, "true", "CI installs torch: the reference benchmark must run there");
    t.skip(`no torch for ${PYTHON}`);
    return;
  }
  // 40 of the book's entries -> 34 train: 2 steps of 2 entries
  const data = path.join(os.tmpdir(), `bench-dpo-data-${process.pid}.json`);
  const entries = JSON.parse(fs.readFileSync(path.join(ROOT, "data", "instruction-data-with-preference.json"), "utf8")).slice(0, 40);
  fs.writeFileSync(data, JSON.stringify(entries));
  try {
    for (const lora of [[], ["--lora-rank", "4"]]) {
      const r = run(["--data", data, "--steps", "2", "--batch-size", "2", "--vs-torch", ...lora], { ...process.env, COURSE_PYTHON: PYTHON });
      assert.equal(r.status, 0, r.stderr.slice(-2000));
      const line = lastLine(r.stdout);
      assert.equal(line.bench, "dpo");
      assert.equal(line.reference, lora.length ? "adapter-off" : "copy");
      assert.equal(line.steps, 2);
      assert.equal(line.torch.steps, 2);
      // the reference starts equal to the policy: ln 2, whatever the weights
      assert.ok(Math.abs(line.first_loss - Math.LN2) < 1e-5, `ours ${line.first_loss}`);
      assert.ok(Math.abs(line.torch.first_loss - Math.LN2) < 1e-5, `torch ${line.torch.first_loss}`);
      // the same parameters train on both sides (every weight, or every LoRA A and B)
      assert.equal(line.trainable_params, line.torch.trainable_params);
      for (const key of ["step_s", "train_tokens_per_s", "peak_rss_mib"]) assert.equal(typeof line.ratio[key], "number", `ratio.${key}`);
      assert.match(r.stderr, /torch: running .*torch_dpo_bench\.py on the same 2 preference batches/);
    }
  } finally {
    fs.rmSync(data, { force: true });
  }
});
