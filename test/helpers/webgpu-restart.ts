// Run by test/webgpu.test.ts in a child process with --expose-gc: start the webgpu engine, another engine,
// webgpu again, then collect garbage and use the GPU. Before one Dawn instance was kept for the whole process
// (lib/engine/webgpu/index.ts), the second start's instance was collected under a live device: SIGSEGV.
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine";

(async () => {
  await initEngine({ backend: "webgpu", log: () => {} });
  await initEngine({ backend: "wasm", log: () => {} });
  await initEngine({ backend: "webgpu", log: () => {} });
  for (let i = 0; i < 10; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((resolve) => setTimeout(resolve, 20));
    const x = tf.tidy(() => tf.tensor1d([1, 2, 3]).mul(2));
    if ((await x.data())[2] !== 6) throw new Error("wrong result");
    x.dispose();
  }
  console.log("webgpu survived a restart and garbage collection");
})();
