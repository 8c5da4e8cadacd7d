// The one kernel-patch helper (lib/engine/patch-kernel.ts) and the version guard that keeps the
// wasm speed patches off a tfjs they were not written for (lib/engine/wasm-guard.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { KernelImpl, KernelPatch, addKernel, patchKernel } from "../lib/engine/patch-kernel";
import { PATCHES_WRITTEN_FOR, foundWasm, speedPatchProblem } from "../lib/engine/wasm-guard";
import { XENT_GRAD_KERNEL } from "../lib/engine/kernel-names";
import { blasMatMulInstalled } from "../lib/engine/blas-matmul";

const FAKE_BACKEND = "course-test-backend";
const out = (v: number): tf.TensorInfo => ({ dataId: {}, shape: [v], dtype: "float32" });

test("patchKernel wraps the kernel, keeps its other fields, and restore puts back the same config object", () => {
  const setupFunc = () => {};
  const original: tf.KernelConfig = { kernelName: "CourseTestOp", backendName: FAKE_BACKEND, kernelFunc: () => out(1), setupFunc };
  tf.registerKernel(original);
  try {
    const restore = patchKernel("CourseTestOp", FAKE_BACKEND, (inner) => (args) => out((inner(args) as tf.TensorInfo).shape[0] + 10));
    const patched = tf.getKernel("CourseTestOp", FAKE_BACKEND) as tf.KernelConfig;
    assert.notEqual(patched, original);
    assert.equal(patched.setupFunc, setupFunc, "setupFunc (wasm binds its C++ function there) must stay");
    assert.deepEqual((patched.kernelFunc({ inputs: {}, backend: {} as never, attrs: {} }) as tf.TensorInfo).shape, [11]);
    restore();
    assert.equal(tf.getKernel("CourseTestOp", FAKE_BACKEND), original);
    restore(); // a second restore changes nothing
    assert.equal(tf.getKernel("CourseTestOp", FAKE_BACKEND), original);
  } finally {
    tf.unregisterKernel("CourseTestOp", FAKE_BACKEND);
  }
});

test("stacked patches come off last-first; taking out the lower one first is refused and changes nothing", () => {
  const original: tf.KernelConfig = { kernelName: "CourseTestOp", backendName: FAKE_BACKEND, kernelFunc: () => out(1) };
  tf.registerKernel(original);
  try {
    const plus = (n: number) => (inner: KernelImpl): KernelImpl => (args) => out((inner(args) as tf.TensorInfo).shape[0] + n);
    const restoreLower = patchKernel("CourseTestOp", FAKE_BACKEND, plus(10));
    const restoreUpper = patchKernel("CourseTestOp", FAKE_BACKEND, plus(100));
    const top = tf.getKernel("CourseTestOp", FAKE_BACKEND) as tf.KernelConfig;
    assert.deepEqual((top.kernelFunc({ inputs: {}, backend: {} as never, attrs: {} }) as tf.TensorInfo).shape, [111]);
    assert.throws(() => restoreLower(), /a later patch replaced it/);
    assert.equal(tf.getKernel("CourseTestOp", FAKE_BACKEND), top);
    restoreUpper();
    restoreLower();
    assert.equal(tf.getKernel("CourseTestOp", FAKE_BACKEND), original);
  } finally {
    tf.unregisterKernel("CourseTestOp", FAKE_BACKEND);
  }
});

test("addKernel adds a kernel the backend lacks, leaves one it has, and a KernelPatch switches it on and off", () => {
  assert.equal(tf.getKernel("CourseAdded", FAKE_BACKEND), undefined);
  const patch = new KernelPatch(() => addKernel("CourseAdded", FAKE_BACKEND, () => out(2)));
  assert.equal(patch.install(), true);
  assert.equal(patch.install(), false);
  const added = tf.getKernel("CourseAdded", FAKE_BACKEND);
  assert.ok(added);
  assert.equal(addKernel("CourseAdded", FAKE_BACKEND, () => out(3)), null, "a kernel already there is kept");
  assert.equal(tf.getKernel("CourseAdded", FAKE_BACKEND), added);
  assert.equal(patch.remove(), true);
  assert.equal(patch.remove(), false);
  assert.equal(tf.getKernel("CourseAdded", FAKE_BACKEND), undefined);
  patch.install(); // and on again
  assert.equal(patch.installed, true);
  patch.remove();
});

test("the guard accepts the tfjs the patches were written for and names what differs otherwise", async () => {
  await initEngine({ backend: "wasm", patches: false, log: () => {} });
  const found = foundWasm();
  assert.equal(speedPatchProblem({ ...found, core: PATCHES_WRITTEN_FOR, wasm: PATCHES_WRITTEN_FOR }), undefined);
  assert.equal(speedPatchProblem({ ...found, core: "4.23.1", wasm: "4.23.1" }), `written for tfjs ${PATCHES_WRITTEN_FOR}, found 4.23.1`);
  assert.equal(
    speedPatchProblem({ ...found, core: PATCHES_WRITTEN_FOR, wasm: "5.0.0" }),
    `written for tfjs ${PATCHES_WRITTEN_FOR}, found tfjs-core ${PATCHES_WRITTEN_FOR} with tfjs-backend-wasm 5.0.0`,
  );
  const { typedArrayFromHeap: _dropped, ...rest } = Object.fromEntries(
    ["makeOutput", "typedArrayFromHeap", "disposeData", "incRef"].map((m) => [m, () => undefined]),
  );
  assert.match(speedPatchProblem({ ...found, backend: rest }) as string, /lacks BackendWasm\.typedArrayFromHeap$/);
});

const SPEED_PATCHED = ["BatchMatMul", "Identity", XENT_GRAD_KERNEL];
const registry = () => SPEED_PATCHED.map((k) => tf.getKernel(k, "wasm"));

test("another tfjs version: no speed patch, the engine line says why, the registry is wasm's own and matmuls stay right", async () => {
  await initEngine({ backend: "wasm", patches: false, log: () => {} });
  const plain = registry();
  assert.equal(plain[2], undefined, "unpatched wasm has no fused-loss gradient kernel");

  await initEngine({ backend: "wasm", patches: true, log: () => {} });
  registry().forEach((k, i) => assert.notEqual(k, plain[i], `${SPEED_PATCHED[i]} is patched`));

  const lines: string[] = [];
  const info = await initEngine({ backend: "wasm", patches: true, log: (l) => lines.push(l), tfjsVersions: { core: "4.23.1", wasm: "4.23.1" } });
  assert.equal(lines.length, 1);
  assert.match(lines[0], new RegExp(`^engine: wasm \\(.*speed patches off: written for tfjs ${PATCHES_WRITTEN_FOR.replace(/\./g, "\\.")}, found 4\\.23\\.1[;)]`));
  assert.doesNotMatch(info.reason, /\bpatched\b|matmul on/);
  registry().forEach((k, i) => assert.equal(k, plain[i], `${SPEED_PATCHED[i]}: restore must put back wasm's own config`));
  assert.equal(blasMatMulInstalled(), false);

  // a transposed matmul (the patched path) on the unpatched kernel equals the cpu backend's
  const f = () => tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([[1, 2, 3], [4, 5, 6]]), tf.tensor2d([[1, 0, 2], [0, 1, 3]]), false, true).dataSync()));
  const onWasm = f();
  await initEngine({ backend: "cpu", log: () => {} });
  assert.deepEqual(onWasm, f());

  // and the installed version gets the patches back
  await initEngine({ backend: "wasm", patches: true, log: () => {} });
  registry().forEach((k, i) => assert.notEqual(k, plain[i], `${SPEED_PATCHED[i]} is patched again`));
});
