/**
 * `bench --kernels`: the tiled matmul of the GPU path (lib/engine/webgpu/kernels/matmul.ts) on GPT-2's own
 * shapes, every tile size, timed with WebGPU timestamp queries: what each reaches in TFLOP/s and which tile
 * the path's chooser takes. Also `profileGpuStep`: one training step of the GPU path under the profiler,
 * GPU time summed by kernel, for `bench --profile` on the webgpu engine.
 */
import { chooseSplit, chooseTile, matmul, TILES } from "../engine/webgpu/kernels/matmul";
import { GpuProfiler } from "../engine/webgpu/profiler";
import { record } from "../engine/webgpu/recorder";
import { gpuRuntime } from "../engine/webgpu/runtime";
import type { GpuTrainer } from "../train/gpu-trainer";
import type { ArrayBatch } from "../train/schedule";
import * as tf from "@tensorflow/tfjs";
import { gatherRows } from "../engine/webgpu/kernels/rows";
import { round } from "./common";

/** GPT-2's matmuls for one step of N tokens (K of them kept) at width C, vocabulary V: [name, M, N, K, transA, transB]. */
function gpt2Shapes(tokens: number, kept: number, C: number, V: number): Array<[string, number, number, number, boolean, boolean]> {
  return [
    ["qkv", tokens, 3 * C, C, false, false],
    ["proj", tokens, C, C, false, false],
    ["fc", tokens, 4 * C, C, false, false],
    ["fc2", tokens, C, 4 * C, false, false],
    ["fc2 dx", tokens, 4 * C, C, false, true],
    ["fc dW", C, 4 * C, tokens, true, false],
    ["logits", kept, V, C, false, true],
    ["head dx", kept, C, V, false, false],
    ["head dW", V, C, kept, true, false],
  ];
}

/**
 * What one dispatch costs, end to end (recording, submitting, running a trivial kernel): n TF.js ops
 * (tf.add on 4,096 values, each its own dispatch: smaller tensors TF.js would hand to the CPU) against n dispatches of the runtime's row gather on 4,096 values.
 */
export async function dispatchCost(n = 400): Promise<{ tfjs_us: number; runtime_us: number }> {
  const rt = gpuRuntime();
  const x = tf.ones([4096]);
  const warm = tf.add(x, 1);
  await warm.data();
  warm.dispose();
  let t0 = performance.now();
  let y = x.clone();
  for (let i = 0; i < n; i++) {
    const z = tf.add(y, 1);
    y.dispose();
    y = z;
  }
  await y.data();
  const tfjs = ((performance.now() - t0) * 1000) / n;
  tf.dispose([x, y]);
  const a = rt.buffer(4096 * 4, "bench a");
  const b = rt.buffer(4096 * 4, "bench b");
  const idx = rt.buffer(16, "bench idx");
  const once = async (count: number) => {
    const rec = record(rt);
    for (let i = 0; i < count; i++) gatherRows(rt, rec, 1, 4096, { buf: i % 2 ? b : a, offset: 0 }, { buf: idx, offset: 0 }, { buf: i % 2 ? a : b, offset: 0 });
    await rec.submit();
    await rt.read(a, 0, 4);
  };
  await once(2);
  t0 = performance.now();
  await once(n);
  const runtime = ((performance.now() - t0) * 1000) / n;
  [a, b, idx].forEach((buf) => rt.destroy(buf));
  return { tfjs_us: round(tfjs), runtime_us: round(runtime) };
}

/** Time every tile on every shape (widths 768 and 1024, 640 tokens of which 520 kept); the bench's `kernels` field. */
export async function benchKernels(say: (line: string) => void, reps = 10): Promise<Record<string, unknown>[]> {
  const rt = gpuRuntime();
  const out: Record<string, unknown>[] = [];
  for (const C of [768, 1024]) {
    for (const [name, M, N, K, transA, transB] of gpt2Shapes(640, 520, C, 50257)) {
      const A = rt.buffer(M * K * 4, "bench A");
      const B = rt.buffer(K * N * 4, "bench B");
      const Cb = rt.buffer(M * N * 4, "bench C");
      const row: Record<string, unknown> = { C, name, M, N, K, chosen: chooseTile(M, N, 1) };
      const time = async (tile: string, split: number): Promise<number> => {
        const run = async () => {
          const rec = record(rt);
          for (let r = 0; r < reps; r++) {
            matmul(rt, rec, { M, N, K, transA, transB, tile, split, a: { buf: A, offset: 0, ld: transA ? M : K }, b: { buf: B, offset: 0, ld: transB ? K : N }, c: { buf: Cb, offset: 0, ld: N } });
          }
          await rec.submit();
        };
        await run(); // compiles the pipelines
        let ns: number;
        if (rt.device.features.has("timestamp-query")) {
          const profiler = GpuProfiler.start(rt);
          try {
            await run();
          } finally {
            profiler.stop();
          }
          ns = [...profiler.rows.values()].reduce((a, r) => a + r.ns, 0) / reps;
        } else {
          await rt.idle();
          const t0 = performance.now(); // wall clock, dispatch overhead included
          await run();
          await rt.idle();
          ns = ((performance.now() - t0) * 1e6) / reps;
        }
        return round((2 * M * N * K) / ns / 1e3); // TFLOP/s
      };
      for (const tile of Object.keys(TILES)) row[tile] = await time(tile, 1);
      // the path's own choice, split-K included
      const split = chooseSplit(M, N, K, 1, row.chosen as string);
      row.split = split;
      row.path_tflops = split > 1 ? await time(row.chosen as string, split) : row[row.chosen as string];
      say(`matmul ${name} C=${C} (${M}, ${N}, ${K}): ${Object.keys(TILES).map((t) => `${t} ${row[t]}`).join(", ")} TFLOP/s; the path takes ${row.chosen}${split > 1 ? ` with split-K ${split}` : ""}: ${row.path_tflops}`);
      out.push(row);
      [A, B, Cb].forEach((b) => rt.destroy(b));
    }
  }
  return out;
}

export interface GpuStepProfile {
  /** GPU time of the step's dispatches, summed, ms */
  gpu_ms: number;
  dispatches: number;
  /** the largest rows: label, calls, ms */
  top: Array<{ kernel: string; calls: number; ms: number }>;
}

/** One more training step under the profiler: GPU time by kernel, to stderr and the JSON. */
export async function profileGpuStep(trainer: GpuTrainer, batch: ArrayBatch, step: number, say: (line: string) => void): Promise<GpuStepProfile> {
  const profiler = GpuProfiler.start(gpuRuntime());
  try {
    await trainer.step(batch, step);
  } finally {
    profiler.stop();
  }
  const rows = [...profiler.rows.entries()].map(([kernel, r]) => ({ kernel, calls: r.calls, ms: r.ns / 1e6 })).sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((a, r) => a + r.ms, 0);
  say(`GPU time of one step on (${batch.inputs.length}, ${batch.inputs[0].length}), ${trainer.lastDispatches} dispatches: ${total.toFixed(2)} ms`);
  for (const r of rows.slice(0, 25)) say(`  ${r.kernel.padEnd(40)} ${String(r.calls).padStart(5)} calls ${r.ms.toFixed(3).padStart(9)} ms ${((100 * r.ms) / total).toFixed(1).padStart(5)}%`);
  return { gpu_ms: round(total), dispatches: trainer.lastDispatches, top: rows.slice(0, 12).map((r) => ({ ...r, ms: round(r.ms) })) };
}
