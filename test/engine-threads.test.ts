// The threaded wasm build in Node (lib/engine/wasm-threads.ts): it starts, computes what the
// cpu backend computes, and lets the process exit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";

test("wasm with 2 threads: same matmul as cpu, and the process exits on its own", async () => {
  const child = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, "helpers", "engine-threads-child.ts")], {
    encoding: "utf8",
    timeout: 60_000, // a pool thread holding the event loop would hang here
  });
  assert.equal(child.status, 0, `child failed or hung: ${child.error ?? ""} ${child.stderr}`);
  const out = JSON.parse(child.stdout.trim().split("\n").pop() as string) as { reason: string; y: number[]; yt: number[] };
  assert.match(out.reason, /2 threads/);

  await initEngine({ backend: "cpu", log: () => {} });
  const a = tf.tensor2d(Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)), [64, 48]);
  const b = tf.tensor2d(Array.from({ length: 48 * 80 }, (_, i) => Math.cos(i)), [48, 80]);
  const expected = Array.from(tf.matMul(a, b).dataSync());
  for (const got of [out.y, out.yt]) {
    assert.equal(got.length, expected.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-4, `element ${i}: ${v} vs ${expected[i]}`));
  }
  tf.dispose([a, b]);
});
