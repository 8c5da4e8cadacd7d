// The bench command's argument handling (its figures are measured by hand, not tested).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const BENCH = path.join(__dirname, "..", "lib", "cli", "bench.ts");
const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, [...process.execArgv, BENCH, ...args], { encoding: "utf8", timeout: 60_000, env });
/**
 * The Python the reference runs with here: the newest torch and transformers where the project has them
 * ($COURSE_HF_PYTHON, which .ci/run exports, or .cache/venv), else $COURSE_PYTHON or python3 on the PATH.
 */
const HF_VENV = path.join(__dirname, "..", ".cache", "venv", "bin", "python");
const PYTHON = process.env.COURSE_HF_PYTHON || (fs.existsSync(HF_VENV) ? HF_VENV : process.env.COURSE_PYTHON || "python3");

test("bench: an unknown config is a one-line error and exit 1", () => {
  const r = run(["--config", "gpt2-huge", "--steps", "1", "--gen", "0", "--backend", "cpu"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: --config: unknown "gpt2-huge"; choose one of bench-tiny, gpt2-small, gpt2-medium$/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
});

test("bench: a bad number is a one-line error and exit 1", () => {
  const r = run(["--steps", "0"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: --steps must be an integer >= 1, got "0"/);
});

test("bench --vs-torch without a Python: says so in the line and still prints its own figures", () => {
  const missing = path.join(os.tmpdir(), `no-such-python-${process.pid}`);
  const r = run(["--steps", "1", "--gen", "0", "--vs-torch"], { ...process.env, COURSE_PYTHON: missing });
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const line = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  assert.equal(line.steps, 1);
  assert.equal(line.torch.skipped, `${missing} not found (set COURSE_PYTHON to a Python with torch)`);
  assert.equal(line.ratio, undefined);
});

test("bench --schedule --vs-torch: both sides replay the same steps, evaluations and generations, and the ratios are printed", { timeout: 300_000 }, (t) => {
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) {
    assert.notEqual(process.env.CI, "true", "CI installs python3-torch: the reference benchmark must run there");
    t.skip(`no torch for ${PYTHON} (set COURSE_PYTHON to a Python with torch)`);
    return;
  }
  // 44 entries -> 37 train (4 batches of 8, the rest dropped), 3 val, 4 test: 4 steps, one evaluation (after step 0)
  const data = path.join(os.tmpdir(), `bench-data-${process.pid}.json`);
  const entries = Array.from({ length: 44 }, (_, i) => ({ instruction: `Repeat the number ${i}.`, input: i % 3 ? "" : `n=${i}`, output: `${i} ${i}` }));
  fs.writeFileSync(data, JSON.stringify(entries));
  try {
    const args = ["--data", data, "--schedule", "1", "--gen", "3", "--gen-batch", "2", "--max-new-tokens", "4", "--vs-torch"];
    const r = spawnSync(process.execPath, [...process.execArgv, BENCH, ...args], {
      env: { ...process.env, COURSE_PYTHON: PYTHON },
      encoding: "utf8",
      timeout: 280_000,
    });
    assert.equal(r.status, 0, r.stderr.slice(-2000));
    const line = JSON.parse(r.stdout.trim().split("\n").pop() as string);
    assert.equal(line.steps, 4);
    assert.equal(line.schedule_epochs, 1);
    assert.ok(line.schedule_s > 0 && line.eval_s > 0);
    assert.equal(line.torch.steps, 4);
    assert.equal(line.torch.evaluations, 1);
    assert.ok(line.torch.schedule_s > 0);
    for (const key of ["train_tokens_per_s", "step_s", "schedule_s", "gen_vs_book_loop", "peak_rss_mib"]) {
      assert.equal(typeof line.ratio[key], "number", `ratio.${key}`);
    }
    assert.match(r.stderr, /torch: running .* on the same 4 batches, 1 evaluations and 3 prompts/);
    assert.match(line.torch.torch, /^\d+\.\d+/);
    // every side makes exactly 4 new tokens per prompt: the same count
    assert.equal(line.gen_tokens, 12);
    assert.equal(line.gen_batch_tokens, 12);
    assert.equal(line.torch.gen_tokens, 12);
    if (typeof line.torch.transformers !== "string") {
      assert.notEqual(process.env.CI, "true", "CI installs transformers in .cache/venv: the generate reference must run there");
      t.diagnostic(`no transformers for ${PYTHON}: the generate reference was not run`);
      return;
    }
    assert.equal(line.torch.hf_gen_tokens, 12);
    assert.equal(line.torch.hf_gen_batch_tokens, 12);
    assert.equal(line.torch.gen_batch, 2);
    for (const key of ["gen_tokens_per_s", "gen_batch_tokens_per_s"]) assert.equal(typeof line.ratio[key], "number", `ratio.${key}`);
  } finally {
    fs.rmSync(data, { force: true });
  }
});

test("bench --profile: the kernels of one more step, summed by name, most time first, without custom-gradient scopes", () => {
  const r = run(["--steps", "1", "--gen", "0", "--profile", "--backend", "wasm"]);
  assert.equal(r.status, 0, r.stderr.slice(-2000));
  const line = JSON.parse(r.stdout.trim().split("\n").pop() as string);
  const p = line.profile;
  assert.ok(p.kernels.length > 3 && p.kernel_calls > 100, JSON.stringify(p));
  const names = p.kernels.map((k: { kernel: string }) => k.kernel);
  assert.ok(names.includes("BatchMatMul"), names.join(","));
  assert.ok(!names.includes("unnamed scope"), names.join(","));
  for (let i = 1; i < p.kernels.length; i++) assert.ok(p.kernels[i - 1].ms >= p.kernels[i].ms, "sorted by time");
  // the head's matmul over a block of 128 rows and the 50,257-token vocabulary is the largest output
  const mm = p.kernels.find((k: { kernel: string }) => k.kernel === "BatchMatMul");
  assert.deepEqual(mm.largest, [128, 50257]);
  const shares = p.kernels.reduce((s: number, k: { share: number }) => s + k.share, 0);
  assert.ok(shares > 0.5 && shares <= 1.01, `top kernels' shares sum to ${shares}`);
  assert.match(r.stderr, /profile of one more step on \(8, 68\):\n\s+kernel\s+calls\s+ms\s+share/);
  assert.match(r.stderr, /kernels \d+ ms in \d+ calls; the step's wall time under the profiler \d+ ms/);
});

test("the reference reports its own peak memory, not the peak of the Node process that started it", (t) => {
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return t.skip(`no torch for ${PYTHON}`);
  const held = Buffer.alloc(2 ** 30, 1); // this process touches 1 GiB: getrusage's ru_maxrss would carry it into the child
  const r = spawnSync(PYTHON, ["-c", "import sys; sys.path.insert(0, sys.argv[1]); from torch_bench import peak_rss_mib; print(peak_rss_mib())", path.join(__dirname, "reference")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const mib = Number(r.stdout.trim());
  assert.ok(mib > 10 && mib < 700, `the reference says it peaked at ${mib} MiB (torch imported, nothing else) while its parent holds ${held.length >> 20} MiB`);
});
