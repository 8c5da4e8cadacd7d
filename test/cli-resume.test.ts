// finetune checkpoints: a run stopped after epoch 1 and resumed with --resume gives the same
// loss history as an uninterrupted run; Ctrl-C stops after saving a checkpoint.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const FINETUNE = path.join(ROOT, "lib", "cli", "finetune.ts");
const ENV = { ...process.env, HF_HUB_OFFLINE: "1", COURSE_NO_STATIC_IMAGE: "1" };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-resume-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const configFile = path.join(tmp, "micro.json");
fs.writeFileSync(configFile, JSON.stringify({ embDim: 8, nLayers: 1, nHeads: 2, contextLength: 256 }));
const common = ["--model", configFile, "--limit", "30", "--batch-size", "4", "--eval-freq", "2", "--eval-iter", "1", "--lr", "0.005", "--response-tokens", "2"];

function finetune(args: string[]) {
  const r = spawnSync(TSX, [FINETUNE, ...args], { cwd: ROOT, encoding: "utf8", env: ENV, timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr + r.stdout);
  return r.stdout;
}
const history = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, "loss-history.json"), "utf8"));

test("1 epoch + --resume --epochs 2 equals 2 epochs straight", () => {
  const full = path.join(tmp, "full");
  const part = path.join(tmp, "part");
  finetune([...common, "--epochs", "2", "--out", full]);
  finetune([...common, "--epochs", "1", "--out", part]);
  assert.ok(fs.existsSync(path.join(part, "checkpoint", "state.json")));
  const out = finetune(["--resume", part, "--epochs", "2"]);
  assert.match(out, /resuming .*: epoch 2, step \d+/);
  const a = history(full);
  const b = history(part);
  assert.deepEqual(b.steps, a.steps);
  assert.deepEqual(b.tokensSeen, a.tokensSeen);
  a.trainLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.trainLosses[i]) < 1e-5, `train loss ${i}: ${b.trainLosses[i]} vs ${x}`));
  a.valLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.valLosses[i]) < 1e-5, `val loss ${i}`));
});

test("with dropout 0.1 too: 1 epoch + --resume --epochs 2 equals 2 epochs straight (the resumed run keeps its dropout)", () => {
  const dropout = path.join(tmp, "dropout.json");
  fs.writeFileSync(dropout, JSON.stringify({ embDim: 8, nLayers: 1, nHeads: 2, contextLength: 256, dropRate: 0.1 }));
  const args = [...common.slice(2), "--model", dropout];
  const full = path.join(tmp, "dropout-full");
  const part = path.join(tmp, "dropout-part");
  finetune([...args, "--epochs", "2", "--out", full]);
  finetune([...args, "--epochs", "1", "--out", part]);
  assert.equal(JSON.parse(fs.readFileSync(path.join(part, "checkpoint", "state.json"), "utf8")).dropRate, 0.1);
  finetune(["--resume", part, "--epochs", "2"]);
  const a = history(full);
  const b = history(part);
  assert.deepEqual(b.steps, a.steps);
  a.trainLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.trainLosses[i]) < 1e-5, `train loss ${i}: ${b.trainLosses[i]} vs ${x}`));
  a.valLosses.forEach((x: number, i: number) => assert.ok(Math.abs(x - b.valLosses[i]) < 1e-5, `val loss ${i}: ${b.valLosses[i]} vs ${x}`));
});

test("Ctrl-C stops after the current step and saves a checkpoint", async () => {
  const dir = path.join(tmp, "interrupted");
  // `node --import tsx`, as `npm run finetune` does: the `tsx` launcher relays a signal to its
  // child and SIGKILLs it if the child does not answer within 30 ms, which a child busy in a
  // training step cannot do
  const child = spawn(process.execPath, ["--import", "tsx", FINETUNE, ...common, "--epochs", "50", "--out", dir], { cwd: ROOT, env: ENV });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => {
    child.stdout.on("data", (d) => {
      stdout += d;
      // after the first evaluation line, training is under way
      if (/Step 000002/.test(stdout) && !child.killed) child.kill("SIGINT");
    });
    child.on("exit", (c) => resolve(c));
  });
  assert.equal(code, 0, stderr);
  assert.match(stdout, /interrupted at step \d+; saved .*checkpoint; continue with --resume/);
  const state = JSON.parse(fs.readFileSync(path.join(dir, "checkpoint", "state.json"), "utf8"));
  assert.ok(state.position.globalStep >= 2);
  assert.ok(!fs.existsSync(path.join(dir, "model")), "an interrupted run saves a checkpoint, not a final model");
});
