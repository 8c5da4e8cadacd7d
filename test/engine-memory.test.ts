import { test } from "node:test";
import assert from "node:assert/strict";
import { trainingMemoryProblem, trainingBytes, countParams, countLoRAParams, MODEL_CONFIGS } from "../lib";
import { collectGarbage } from "../lib/engine/memory";

const params = (name: string) => countParams(MODEL_CONFIGS[name]);
const lora16 = (name: string) => countLoRAParams(MODEL_CONFIGS[name], 16);

test("training memory: gpt2-small and larger are refused on wasm with a way out; tiny and native engines pass", () => {
  for (const name of ["gpt2-small (124M)", "gpt2-medium (355M)", "gpt2-xl (1558M)"]) {
    const problem = trainingMemoryProblem(params(name), "wasm");
    assert.ok(problem, `${name} should not fit wasm's heap`);
    assert.match(problem!, /wasm engine's 4 GiB heap/);
    assert.match(problem!, /tfjs-node/);
    assert.doesNotMatch(problem!, /\n/);
  }
  assert.equal(trainingMemoryProblem(params("tiny"), "wasm"), undefined);
  assert.equal(trainingMemoryProblem(params("gpt2-medium (355M)"), "tensorflow"), undefined);
  assert.equal(trainingMemoryProblem(params("gpt2-medium (355M)"), "cpu"), undefined);
});

test("training memory with LoRA: frozen weights need no gradients or moments, so gpt2-medium at rank 16 fits wasm (BLAS matmul)", () => {
  // the refusal of a full fine-tune that LoRA would fit suggests it
  for (const name of ["gpt2-small (124M)", "gpt2-medium (355M)"]) {
    assert.match(trainingMemoryProblem(params(name), "wasm", undefined, true)!, /--lora-rank 16/);
  }
  assert.doesNotMatch(trainingMemoryProblem(params("gpt2-xl (1558M)"), "wasm", undefined, true)!, /--lora-rank/);
  // weights once, the adapter five times: far below the full fine-tune's five copies of everything
  const n = params("gpt2-medium (355M)");
  assert.equal(trainingBytes(n, lora16("gpt2-medium (355M)"), true), 4 * (n + 5 * 7_898_384));
  assert.equal(trainingMemoryProblem(n, "wasm", lora16("gpt2-medium (355M)"), true), undefined);
  assert.equal(trainingMemoryProblem(params("gpt2-small (124M)"), "wasm", lora16("gpt2-small (124M)"), false), undefined);
  // without BLAS, XNNPACK's packed copies of the frozen weights too: gpt2-medium no longer fits, and says what it needs
  const refused = trainingMemoryProblem(n, "wasm", lora16("gpt2-medium (355M)"), false);
  assert.match(refused!, /frozen weights and the LoRA adapter's gradients and AdamW state/);
  assert.match(refused!, /tfjs-node/);
  assert.ok(trainingMemoryProblem(params("gpt2-large (774M)"), "wasm", lora16("gpt2-large (774M)"), true), "838M frozen float32 weights alone are 3.1 GiB");
  assert.ok(trainingMemoryProblem(params("gpt2-xl (1558M)"), "wasm", lora16("gpt2-xl (1558M)"), true));
});

test("collectGarbage: V8's collector runs on request, and frees an unreferenced buffer of 64 MiB", () => {
  let buffer: Float32Array | null = new Float32Array(16 * 2 ** 20).fill(1);
  assert.equal(collectGarbage(), true);
  const held = process.memoryUsage().arrayBuffers;
  assert.ok(held >= 64 * 2 ** 20 && buffer.length > 0);
  buffer = null;
  collectGarbage();
  const after = process.memoryUsage().arrayBuffers;
  assert.ok(held - after >= 63 * 2 ** 20, `arrayBuffers ${held} -> ${after} bytes`);
});
