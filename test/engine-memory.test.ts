import { test } from "node:test";
import assert from "node:assert/strict";
import { trainingMemoryProblem, countParams, MODEL_CONFIGS } from "../lib";

const params = (name: string) => countParams(MODEL_CONFIGS[name]);

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
