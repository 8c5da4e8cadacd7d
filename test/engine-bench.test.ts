// The bench command's argument handling (its figures are measured by hand, not tested).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";

const BENCH = path.join(__dirname, "..", "lib", "cli", "bench.ts");
const run = (args: string[]) =>
  spawnSync(process.execPath, [...process.execArgv, BENCH, ...args], { encoding: "utf8", timeout: 60_000 });

test("bench: an unknown config is a one-line error and exit 1", () => {
  const r = run(["--config", "gpt2-huge", "--steps", "1", "--gen", "0", "--backend", "cpu"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^error: --config: unknown "gpt2-huge"; choose one of bench-tiny, gpt2-small$/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /); // no stack trace
});

test("bench: a bad number is a one-line error and exit 1", () => {
  const r = run(["--steps", "0"]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /error: --steps must be an integer >= 1, got "0"/);
});
