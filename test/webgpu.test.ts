// The WebGPU engine (lib/engine/webgpu.ts) on this machine's adapter: in CI, Mesa's lavapipe, a software
// Vulkan GPU, so the subset is sized for one (the golden fixtures' tiny configs, small batches):
// forward, loss and gradients against PyTorch, AdamW steps against wasm, save and reload, generation
// token-equal, the 2^24 gather trap, the buffer limit, and leaks (tensors and GPU bytes).
// Without the webgpu packages or an adapter the file is skipped, saying why; under CI=true it fails.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as os from "node:os";
import { spawnSync } from "node:child_process";
import * as tf from "@tensorflow/tfjs";
import { initEngine, EngineInfo } from "../lib/engine";
import { linuxGpuDevices, webgpuAdapter } from "../lib/engine/webgpu";
import { ConfigError } from "../lib/core/errors";
import { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { maskedCrossEntropy, readKeptTargets } from "../lib/train/loss";
import { calcLossBatchFused, softmaxCrossEntropy } from "../lib/train/fused-loss";
import { AdamW } from "../lib/train/adamw";
import { trainStep } from "../lib/train/train";
import { meanLoss } from "../lib/train/stepper";
import { generateIds } from "../lib/generate/generate";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { BOOK_LR, BOOK_WEIGHT_DECAY } from "../lib/core/book";
import { deterministicModel } from "./helpers/deterministic-weights";
import { tempDir } from "./helpers/hf-checkpoint";
import { golden, maxAbsDiff, readFixture } from "./helpers/golden";

/** Against PyTorch: float32 on another GPU's arithmetic (the bar). */
const TOL_TORCH = 1e-3;
/** Against wasm in this process: the same float32 model, other kernels. */
const TOL_WASM = 1e-4;

// Three AdamW steps of the small golden model on fixed batches (the last one padded).
const STEP_BATCHES = [
  { inputs: [[1, 2, 3, 4, 5, 6], [7, 8, 9, 10, 11, 12]], targets: [[2, 3, 4, 5, 6, 7], [8, 9, 10, 11, 12, 13]] },
  { inputs: [[20, 21, 22, 23, 24, 25], [30, 31, 32, 33, 34, 35]], targets: [[21, 22, 23, 24, 25, 26], [31, 32, 33, 34, 35, 36]] },
  { inputs: [[40, 41, 42, 43, 50256 % 64, 50256 % 64]], targets: [[41, 42, 43, 44, -100, -100]] },
];
async function adamwRun(): Promise<{ losses: number[]; weights: Map<string, Float32Array> }> {
  const model = deterministicModel(golden("small").config, { tiedHead: false });
  // the book's settings: with a larger lr, Adam turns float32 noise in a near-zero gradient into a full step
  const optimizer = new AdamW(model.params, { lr: BOOK_LR, weightDecay: BOOK_WEIGHT_DECAY });
  const losses: number[] = [];
  for (const [i, b] of STEP_BATCHES.entries()) {
    const inputs = tf.tensor2d(b.inputs, undefined, "int32");
    const targets = tf.tensor2d(b.targets, undefined, "int32");
    losses.push(await trainStep(model, optimizer, inputs, targets, i));
    tf.dispose([inputs, targets]);
  }
  const weights = new Map<string, Float32Array>();
  for (const [name, p] of model.params) weights.set(name, (await p.data()) as Float32Array);
  optimizer.dispose();
  model.dispose();
  return { losses, weights };
}

let auto: { info: EngineInfo; line: string };
let onWasm: Awaited<ReturnType<typeof adamwRun>>;
let engine: EngineInfo | undefined;
let skipReason: string | undefined;

before(async () => {
  const lines: string[] = [];
  auto = { info: await initEngine({ backend: "auto", log: (l) => lines.push(l) }), line: lines[0] };
  await initEngine({ backend: "wasm", log: () => {} });
  onWasm = await adamwRun(); // the reference, computed before any tensor lives on the GPU
  try {
    engine = await initEngine({ backend: "webgpu", log: () => {} });
  } catch (err) {
    skipReason = `no WebGPU engine here: ${(err as Error).message}`;
    if (process.env.CI === "true") throw new Error(`CI=true: ${skipReason}`);
  }
});

/** A test that needs the WebGPU engine: skipped (with the reason) where there is none, outside CI. */
function gpuTest(name: string, fn: () => Promise<void>) {
  test(name, async (t) => {
    if (skipReason !== undefined) return t.skip(skipReason);
    await fn();
  });
}

gpuTest("the engine line names the adapter and its API; auto takes a software adapter never", async () => {
  const gpu = webgpuAdapter();
  assert.ok(gpu !== null && engine !== undefined);
  assert.equal(engine.name, "webgpu");
  assert.equal(tf.getBackend(), "webgpu");
  assert.ok(engine.reason.includes(`${gpu.name}, ${gpu.api}`), engine.reason);
  assert.match(gpu.api, /^(Vulkan|Metal|D3D12|D3D11|OpenGL ES)$/);
  console.log(`# engine: webgpu (${engine.reason})`);
  if (gpu.software) {
    assert.notEqual(auto.info.name, "webgpu", auto.line);
    // a Linux machine without a GPU device node is not probed at all (lib/engine/webgpu.ts, linuxGpuDevices)
    const unprobed = process.platform === "linux" && linuxGpuDevices().length === 0;
    assert.match(auto.line, unprobed ? /webgpu: no GPU device \(.+\), not probed/ : /webgpu: only a software adapter \(.+\), not chosen by auto/);
  } else {
    assert.equal(auto.info.name === "webgpu" || auto.line.includes("via tfjs-node-gpu"), true, auto.line);
  }
});

for (const name of ["small", "vocab"]) {
  gpuTest(`${name}: logits, loss (plain and fused) and gradients match PyTorch within ${TOL_TORCH}`, async () => {
    const g = golden(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const inputs = tf.tensor2d(g.inputs, undefined, "int32");
    const targets = tf.tensor2d(g.targets, undefined, "int32");
    const logits = model.forward(inputs);
    const all = (await logits.array()) as number[][][];
    let worst = 0;
    for (const s of g.logitSlices) {
      const width = s.values[0][0].length;
      worst = Math.max(worst, maxAbsDiff(all.flatMap((row) => row.flatMap((p) => p.slice(s.start, s.start + width))), s.values.flat(2)));
    }
    const lse = tf.logSumExp(logits, -1);
    const argmax = tf.argMax(logits, -1);
    const worstLse = maxAbsDiff(await lse.data(), g.logsumexp.flat());
    assert.deepEqual(await argmax.array(), g.argmax);
    const kept = await readKeptTargets(targets, g.config.vocabSize, "test");
    const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(model.forward(inputs), targets, kept));
    const loss = (await value.data())[0];
    const fused = tf.tidy(() => calcLossBatchFused(model, inputs, targets, false, kept));
    const fusedLoss = (await fused.data())[0];
    const byVar = new Map([...model.params].map(([n, v]) => [v.name, n]));
    let worstGrad = 0;
    for (const [k, t] of Object.entries(grads)) {
      const want = g.grads[byVar.get(k) as string];
      if (want !== undefined) worstGrad = Math.max(worstGrad, maxAbsDiff((await t.data()).slice(0, want.first.length), want.first));
    }
    console.log(`# ${name} on webgpu: max |logit - torch| ${worst.toExponential(2)}, |loss - torch| ${Math.abs(loss - g.loss).toExponential(2)}, ` +
      `|fused - torch| ${Math.abs(fusedLoss - g.loss).toExponential(2)}, max |grad - torch| ${worstGrad.toExponential(2)}`);
    assert.ok(worst < TOL_TORCH, `logits differ by ${worst}`);
    assert.ok(worstLse < TOL_TORCH, `logsumexp differs by ${worstLse}`);
    assert.ok(Math.abs(loss - g.loss) < TOL_TORCH, `loss ${loss} vs ${g.loss}`);
    assert.ok(Math.abs(fusedLoss - g.loss) < TOL_TORCH, `fused loss ${fusedLoss} vs ${g.loss}`);
    assert.ok(worstGrad < TOL_TORCH, `gradients differ by ${worstGrad}`);
    tf.dispose([inputs, targets, logits, lse, argmax, value, fused, ...Object.values(grads)]);
    model.dispose();
  });

  gpuTest(`${name}: greedy generation gives PyTorch's tokens, with and without the key/value cache`, async () => {
    const g = golden(name);
    const model = deterministicModel(g.config, { tiedHead: g.tiedHead });
    const opts = { maxNewTokens: g.greedy[0].length - g.prompt[0].length, contextSize: g.config.contextLength };
    assert.deepEqual(await generateIds(model, g.prompt, opts), g.greedy);
    assert.deepEqual(await generateIds(model, g.prompt, { ...opts, kvCache: true }), g.greedy);
    model.dispose();
  });
}

gpuTest(`three AdamW steps give wasm's losses and weights within ${TOL_WASM}`, async () => {
  const t0 = performance.now();
  const onGpu = await adamwRun();
  console.log(`# 3 AdamW steps of the small model on webgpu: ${((performance.now() - t0) / 1000).toFixed(2)} s; losses ${onGpu.losses.map((l) => l.toFixed(5)).join(", ")}`);
  assert.ok(maxAbsDiff(onGpu.losses, onWasm.losses) < TOL_WASM, `losses ${onGpu.losses} vs wasm ${onWasm.losses}`);
  let worst = 0;
  let where = "";
  for (const [name, w] of onGpu.weights) {
    const d = maxAbsDiff(w, onWasm.weights.get(name) as Float32Array);
    if (d > worst) [worst, where] = [d, name];
  }
  console.log(`# max |weight - wasm| after 3 steps: ${worst.toExponential(2)} (${where})`);
  assert.ok(worst < TOL_WASM, `weights differ from wasm's by ${worst} (${where})`);
});

gpuTest("a Hugging Face checkpoint loads to transformers' logits, and saves and reloads unchanged", async () => {
  const want = readFixture<{ inputs: number[][]; logits: number[][][] }>("hf-gpt2-tiny-golden.json");
  const forward = async (model: GPTModel) => {
    const ids = tf.tensor2d(want.inputs, undefined, "int32");
    const out = model.forward(ids);
    const values = (await out.data()) as Float32Array;
    tf.dispose([ids, out]);
    return values;
  };
  const model = await loadGPT2Directory(path.join(__dirname, "fixtures", "hf-gpt2-tiny"));
  const first = await forward(model);
  assert.ok(maxAbsDiff(first, want.logits.flat(2)) < TOL_TORCH);
  const dir = tempDir("webgpu-save-");
  await saveGPT2Directory(model, dir);
  model.dispose();
  const again = await loadGPT2Directory(dir);
  assert.equal(maxAbsDiff(await forward(again), first), 0);
  again.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

gpuTest("the loss past 2^24 flat positions is exact (the WebGPU gather reads indices as float32)", async () => {
  const v = 2 ** 23 + 3; // (2, V): the last label of row 1 sits at flat position 2^24 + 5, odd
  const host = new Float32Array(2 * v);
  let s = 12345;
  for (let i = 0; i < host.length; i++) host[i] = ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 8 - 4;
  const labels = Int32Array.from([v - 2, v - 1]);
  // float64 reference on the host: mean of logsumexp(row) - row[label]
  let want = 0;
  for (let r = 0; r < 2; r++) {
    const row = host.subarray(r * v, (r + 1) * v);
    let max = -Infinity;
    for (const x of row) max = Math.max(max, x);
    let sum = 0;
    for (const x of row) sum += Math.exp(x - max);
    want += (max + Math.log(sum) - row[labels[r]]) / 2;
  }
  const logits = tf.tensor2d(host, [2, v]);
  // the trap itself, on this backend: a flat gather at 2^24 + 5 reads a neighbour
  const flat = tf.gather(logits.reshape([-1]), tf.tensor1d([v + labels[1]], "int32"));
  const trapped = (await flat.data())[0] !== host[v + labels[1]];
  const plain = maskedCrossEntropy(logits, tf.tensor1d(labels, "int32"));
  const fused = softmaxCrossEntropy(logits, labels);
  const [p, f] = [(await plain.data())[0], (await fused.data())[0]];
  console.log(`# past 2^24: flat gather ${trapped ? "reads a neighbour" : "is exact"} here; plain loss ${p}, fused ${f}, float64 ${want}`);
  assert.ok(Math.abs(p - want) < 1e-4, `plain loss ${p} vs ${want}`);
  assert.ok(Math.abs(f - want) < 1e-4, `fused loss ${f} vs ${want}`);
  tf.dispose([logits, flat, plain, fused]);
});

gpuTest("a tensor past the device's buffer limit is a one-line ConfigError, not zeros; a weight matrix too", async () => {
  const limit = webgpuAdapter()?.maxBufferBytes as number;
  const before = tf.memory().numTensors;
  assert.throws(() => tf.tidy(() => tf.fill([limit / 4 + 1024], 1).sum()), (err: unknown) =>
    err instanceof ConfigError && /^webgpu: a tensor of [\d.]+ MiB is past the [\d.]+ MiB one buffer may hold on .+$/.test(err.message));
  assert.equal(tf.memory().numTensors, before);
  // a feed-forward matrix (C, 4C) one row past the limit: only the vocabulary tables are split
  const embDim = Math.ceil(Math.sqrt(limit / 16)) + 4;
  const cfg: GPTConfig = { vocabSize: 10, contextLength: 8, embDim, nHeads: 1, nLayers: 1, dropRate: 0, qkvBias: true };
  assert.throws(() => new GPTModel(cfg, { init: "zeros" }), /^ConfigError: model parameter "blocks\.0\.ff\.fc1\.weight" \[\d+, \d+\] is [\d.]+ MiB, past the/);
});

gpuTest("vocabulary tables past the buffer limit are split into blocks: the same loss on both paths, the same file when saved", async () => {
  const limit = webgpuAdapter()?.maxBufferBytes as number;
  const vocabSize = Math.ceil(limit / 4 / 64) + 1000; // (V, 64) float32: past the limit
  const cfg: GPTConfig = { vocabSize, contextLength: 16, embDim: 64, nHeads: 2, nLayers: 1, dropRate: 0, qkvBias: true };
  const model = new GPTModel(cfg, { seed: 5 });
  assert.equal(model.tables.blocks.length, 2);
  assert.ok(model.paramNames().includes("tokEmb.weight") && model.params.has("tokEmb.weight:1"));
  // tokens on both sides of the blocks' boundary, and the last one
  const edge = model.tables.blocks[1][0];
  const batch = { inputs: [[edge - 1, edge, 3, vocabSize - 1]], targets: [[edge, 3, vocabSize - 1, edge - 1]] };
  const inputs = tf.tensor2d(batch.inputs, undefined, "int32");
  const targets = tf.tensor2d(batch.targets, undefined, "int32");
  const plain = (await calcLossBatchFused(model, inputs, targets, false, await readKeptTargets(targets, vocabSize, "test")).data())[0];
  process.env.COURSE_GPU_PATH = "1";
  const onGpu = await meanLoss(model, [batch]);
  assert.ok(Math.abs(plain - onGpu) < 1e-4, `plain ${plain} vs GPU path ${onGpu}`);
  const dir = tempDir("webgpu-split-");
  await saveGPT2Directory(model, dir);
  const again = await loadGPT2Directory(dir);
  for (const name of ["tokEmb.weight", "outHead.weight"]) assert.equal(maxAbsDiff(await again.values(name), await model.values(name)), 0, name);
  tf.dispose([inputs, targets]);
  again.dispose();
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

gpuTest("a training step and generation leave no tensors and no GPU bytes behind", async () => {
  const g = golden("small");
  const model = deterministicModel(g.config, { tiedHead: false });
  const optimizer = new AdamW(model.params, { lr: 1e-3 });
  const step = async (i: number) => {
    const inputs = tf.tensor2d(STEP_BATCHES[0].inputs, undefined, "int32");
    const targets = tf.tensor2d(STEP_BATCHES[0].targets, undefined, "int32");
    await trainStep(model, optimizer, inputs, targets, i);
    tf.dispose([inputs, targets]);
  };
  const gpuMemory = () => tf.memory() as tf.MemoryInfo & { numBytesInGPU: number };
  const generate = async () => {
    await generateIds(model, g.prompt, { maxNewTokens: 6, kvCache: true });
    await generateIds(model, g.prompt, { maxNewTokens: 6 });
  };
  // warm up: the first step makes AdamW's moments; the backend frees a step's buffers at the next
  // submit, so GPU bytes settle after the second step (and likewise for generation)
  await step(0);
  await step(1);
  const afterSteps = gpuMemory();
  for (let i = 2; i < 5; i++) await step(i);
  let now = gpuMemory();
  assert.equal(now.numTensors, afterSteps.numTensors, "a training step leaked tensors");
  assert.equal(now.numBytesInGPU, afterSteps.numBytesInGPU, "a training step leaked GPU memory");
  await generate();
  const afterGeneration = gpuMemory();
  for (let i = 0; i < 3; i++) await generate();
  now = gpuMemory();
  assert.equal(now.numTensors, afterSteps.numTensors, "generation leaked tensors");
  assert.equal(now.numBytesInGPU, afterGeneration.numBytesInGPU, "generation leaked GPU memory");
  optimizer.dispose();
  model.dispose();
});

gpuTest("a second start of the webgpu engine, then garbage collection, does not crash the process (one Dawn instance)", async () => {
  const child = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", path.join(__dirname, "helpers", "webgpu-restart.ts")], { encoding: "utf8", timeout: 120_000 });
  assert.equal(child.signal, null, `the child died of ${child.signal}: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /survived a restart/);
});

test("auto looks for a GPU device node before it starts Dawn on Linux", () => {
  const dev = fs.mkdtempSync(path.join(os.tmpdir(), "dev-"));
  try {
    assert.deepEqual(linuxGpuDevices(dev), []);
    fs.writeFileSync(path.join(dev, "nvidiactl"), ""); // the control node alone is not a GPU
    fs.mkdirSync(path.join(dev, "dri"));
    fs.writeFileSync(path.join(dev, "dri", "card0"), ""); // a display node, not a render node
    assert.deepEqual(linuxGpuDevices(dev), []);
    fs.writeFileSync(path.join(dev, "dri", "renderD128"), "");
    fs.writeFileSync(path.join(dev, "nvidia0"), "");
    assert.deepEqual(linuxGpuDevices(dev).sort(), [path.join(dev, "dri", "renderD128"), path.join(dev, "nvidia0")].sort());
  } finally {
    fs.rmSync(dev, { recursive: true, force: true });
  }
});
