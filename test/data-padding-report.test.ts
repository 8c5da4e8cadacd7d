import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const root = path.join(__dirname, "..");
const run = (...args: string[]) =>
  spawnSync(process.execPath, [path.join(root, "node_modules", "tsx", "dist", "cli.mjs"), "lib/cli/padding-report.ts", ...args], {
    cwd: root,
    encoding: "utf8",
  });

test("padding-report: table of plain vs grouped padding on the 935 training entries", () => {
  const r = run();
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /935 entries, batch 8/);
  assert.match(r.stdout, /plain shuffled\s+116\s+\d+\s+\d+\s+19\.0%/);
  assert.match(r.stdout, /length-grouped \(x50\)\s+116\s+\d+\s+\d+\s+1\.0%/);
});

test("padding-report --json, and one-line errors with exit code 1", () => {
  const r = run("--json", "--batch-size", "4");
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.plain.batches, 233);
  assert.ok(out.grouped.paddingFraction < out.plain.paddingFraction);

  const bad = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "padding-report-")), "bad.json");
  fs.writeFileSync(bad, JSON.stringify([{ instruction: "x", input: "", output: 3 }]));
  const e = run("--data", bad);
  assert.equal(e.status, 1);
  assert.equal(e.stderr.trim(), `error: ${bad}: entry 0: field "output" must be a string, got number`);
  assert.equal(run("--batch-size", "0").stderr.trim(), 'error: --batch-size must be an integer >= 1, got "0"');
  fs.rmSync(path.dirname(bad), { recursive: true });
});
