// The threaded wasm build in Node (lib/engine/wasm-threads.ts): it starts, computes what the
// cpu backend computes, and lets the process exit.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";

/** Run the child (a fresh process: the wasm build and the BLAS are chosen once per process). */
function runChild(env: Record<string, string> = {}): { reason: string; y: number[]; yt: number[] } {
  const child = spawnSync(process.execPath, [...process.execArgv, path.join(__dirname, "helpers", "engine-threads-child.ts")], {
    encoding: "utf8",
    timeout: 60_000, // a pool thread holding the event loop would hang here
    env: { ...process.env, ...env },
  });
  assert.equal(child.status, 0, `child failed or hung: ${child.error ?? ""} ${child.stderr}`);
  return JSON.parse(child.stdout.trim().split("\n").pop() as string);
}

async function assertCpuMatMul(out: { y: number[]; yt: number[] }): Promise<void> {
  await initEngine({ backend: "cpu", log: () => {} });
  const a = tf.tensor2d(Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)), [64, 48]);
  const b = tf.tensor2d(Array.from({ length: 48 * 80 }, (_, i) => Math.cos(i)), [48, 80]);
  const expected = Array.from(tf.matMul(a, b).dataSync());
  for (const got of [out.y, out.yt]) {
    assert.equal(got.length, expected.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - expected[i]) < 1e-4, `element ${i}: ${v} vs ${expected[i]}`));
  }
  tf.dispose([a, b]);
}

test("wasm with 2 threads: same matmul as cpu, and the process exits on its own", async () => {
  const out = runChild();
  assert.match(out.reason, /2 threads/);
  await assertCpuMatMul(out);
});

test("a BLAS that does not load, or COURSE_BLAS=0: wasm's own matmul runs, and the engine line says why", async () => {
  const missing = runChild({ COURSE_BLAS: "/nonexistent/libnoblas.so" });
  assert.match(missing.reason, /no BLAS: COURSE_BLAS=\/nonexistent\/libnoblas\.so did not load \(/);
  assert.doesNotMatch(missing.reason, /matmul on/);
  await assertCpuMatMul(missing);
  const off = runChild({ COURSE_BLAS: "0" });
  assert.match(off.reason, /BLAS off \(COURSE_BLAS=0\)/);
  await assertCpuMatMul(off);
});
