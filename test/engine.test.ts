// initEngine: picks a backend, explains the choice, and is idempotent.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { ConfigError } from "../lib/core/errors";

test("auto picks the best engine present and says why the better ones were skipped", async () => {
  const lines: string[] = [];
  const info = await initEngine({ backend: "auto", log: (l) => lines.push(l) });
  assert.equal(tf.getBackend(), info.name);
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^engine: ${info.name}`));
  if (info.name !== "tensorflow") {
    // the native packages are absent or broken here: each skip is explained
    assert.match(info.reason, /tfjs-node-gpu (not installed|failed)/);
    assert.match(info.reason, /tfjs-node (not installed|failed)/);
  }
  const y = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()[0]);
  assert.equal(y, 11);
});

test("a second call returns the same result without printing again", async () => {
  const lines: string[] = [];
  const a = await initEngine({ backend: "auto", log: (l) => lines.push(l) });
  const b = await initEngine({ backend: "auto", log: (l) => lines.push(l) });
  assert.equal(a, b);
  assert.equal(lines.length, 0);
});

test("an explicit backend is honoured, and an unknown one is a ConfigError", async () => {
  const info = await initEngine({ backend: "cpu", log: () => {} });
  assert.equal(info.name, "cpu");
  assert.equal(tf.getBackend(), "cpu");
  await assert.rejects(initEngine({ backend: "gpu" as never, log: () => {} }), ConfigError);
});

test("COURSE_BACKEND selects the engine when no option is given", async () => {
  const saved = process.env.COURSE_BACKEND;
  process.env.COURSE_BACKEND = "wasm";
  try {
    const info = await initEngine({ log: () => {} });
    assert.equal(info.name, "wasm");
    assert.match(info.reason, /COURSE_BACKEND/);
    process.env.COURSE_BACKEND = "nonsense";
    await assert.rejects(initEngine({ log: () => {} }), /COURSE_BACKEND: unknown engine "nonsense"/);
  } finally {
    if (saved === undefined) delete process.env.COURSE_BACKEND;
    else process.env.COURSE_BACKEND = saved;
  }
});
