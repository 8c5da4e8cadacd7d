// A config.json whose numbers would need more memory than the weights file could hold is refused
// with one line before anything is allocated: `loss` (then called `evaluate`) on n_layer 1e9 used to die with a
// JavaScript heap out-of-memory abort and a native stack dump.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { TINY_HF_CONFIG, makeHFTensors, tempDir, writeHFDir } from "./helpers/hf-checkpoint";

const ROOT = path.resolve(__dirname, "..");
const root = tempDir("hostile-config");
after(() => fs.rmSync(root, { recursive: true, force: true }));

test("loss on a folder whose config.json says n_layer 1e9: exit 1, one error line naming the file and key, no stack", () => {
  const dir = writeHFDir(path.join(root, "huge"), makeHFTensors(), { config: { ...TINY_HF_CONFIG, n_layer: 1_000_000_000 } });
  const data = path.join(root, "data.json");
  fs.writeFileSync(data, JSON.stringify([{ instruction: "Say hi.", input: "", output: "Hi." }]));
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "lib", "cli", "loss.ts"), "--weights", dir, "--data", data, "--backend", "cpu"],
    // a small heap, so that code which starts allocating for 1e9 layers fails in seconds, not minutes
    { cwd: ROOT, encoding: "utf8", timeout: 120_000, env: { ...process.env, NODE_OPTIONS: "--max-old-space-size=512" } },
  );
  assert.equal(r.status, 1, `exit ${r.status} (signal ${r.signal}); stderr:\n${r.stderr.slice(0, 2000)}`);
  assert.equal(r.stdout, "");
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0], /config\.json.*"n_layer"/);
  // the engine line goes to stderr too; apart from it, nothing: no stack, no native dump
  const rest = r.stderr.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("error:") && !/^engine/i.test(l));
  assert.deepEqual(rest, [], r.stderr);
});
