// Run by test/engine-threads.test.ts in its own process (the wasm build is chosen once per
// process): start wasm with 2 threads, print the engine line and a matmul's values as JSON.
// The test also checks that this process exits by itself (the pool's threads must not hold it).
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../../lib/engine";

async function main(): Promise<void> {
  const info = await initEngine({ backend: "wasm", threads: 2, log: () => {} });
  const a = tf.tensor2d(Array.from({ length: 64 * 48 }, (_, i) => Math.sin(i)), [64, 48]);
  const b = tf.tensor2d(Array.from({ length: 48 * 80 }, (_, i) => Math.cos(i)), [48, 80]);
  const y = tf.matMul(a, b);
  const yt = tf.matMul(a, b.transpose(), false, true);
  console.log(JSON.stringify({ reason: info.reason, y: Array.from(y.dataSync()), yt: Array.from(yt.dataSync()) }));
}

main();
