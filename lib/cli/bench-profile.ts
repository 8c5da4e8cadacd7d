/**
 * `npm run bench -- --profile`: where one training step's time goes, kernel by kernel.
 *
 * One more step on the first timed batch runs under `tf.profile`, which times every kernel the
 * engine runs (forward, backward and AdamW alike) and records the tensor memory after each. The
 * kernels are summed by name: calls, milliseconds, share of all kernel time, and the largest
 * output (a custom-gradient op's scope, whose time is its kernels', is left out). What is not kernel time (the step's wall time less the sum) is per-op overhead in
 * JavaScript and the engine: autodiff's bookkeeping, tensor allocation, tidy scopes. Profiling
 * itself slows a step (each kernel is timed on its own), so the wall time here is not the bench's.
 */
import * as tf from "@tensorflow/tfjs";
import { batchTensors } from "../data/collate";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "../train/adamw";
import { ArrayBatch, trainStep } from "../train/train";
import { round } from "./common";

/** One kernel's share of a profiled step. */
export interface KernelShare {
  kernel: string;
  calls: number;
  ms: number;
  share: number;
  /** The largest output any call made, as a shape. */
  largest: number[];
}

/** A profiled step: the kernels (most time first), their total, the wall time, and the tensor-memory peak above resting. */
export interface StepProfile {
  kernels: KernelShare[];
  kernel_ms: number;
  wall_ms: number;
  kernel_calls: number;
  peak_above_resting_mib: number;
}

/** Sum a tf.profile's kernels by name. Kernel times are awaited (the engine may report them as promises). */
export async function sumKernels(kernels: { name: string; kernelTimeMs: number | { error: string } | Promise<number | { error: string }>; outputShapes: number[][] }[]): Promise<KernelShare[]> {
  const byName = new Map<string, KernelShare>();
  let total = 0;
  for (const k of kernels) {
    // a custom-gradient op is recorded as a scope whose time includes its own kernels, which are recorded too
    if (tf.getKernel(k.name, tf.getBackend()) === undefined) continue;
    const t = await k.kernelTimeMs;
    const ms = typeof t === "number" ? t : 0;
    total += ms;
    const row = byName.get(k.name) ?? { kernel: k.name, calls: 0, ms: 0, share: 0, largest: [] };
    row.calls += 1;
    row.ms += ms;
    for (const shape of k.outputShapes ?? []) {
      if (shape.reduce((a, b) => a * b, 1) > row.largest.reduce((a, b) => a * b, 1)) row.largest = shape;
    }
    byName.set(k.name, row);
  }
  const rows = [...byName.values()].sort((a, b) => b.ms - a.ms);
  for (const r of rows) r.share = total > 0 ? r.ms / total : 0;
  return rows;
}

/** Profile `step` (one training step); the tensor memory it needed above what was held before it. */
export async function profileStep(step: () => Promise<number | void>): Promise<StepProfile> {
  const resting = tf.memory().numBytes;
  const t0 = performance.now();
  const profile = await tf.profile(async () => {
    await step(); // its result (a loss number) is not a tensor to keep
  });
  const wall = performance.now() - t0;
  const kernels = await sumKernels(profile.kernels as Parameters<typeof sumKernels>[0]);
  const kernelMs = kernels.reduce((s, k) => s + k.ms, 0);
  return {
    kernels,
    kernel_ms: Math.round(kernelMs),
    wall_ms: Math.round(wall),
    kernel_calls: profile.kernels.length,
    peak_above_resting_mib: Math.round((profile.peakBytes - resting) / 2 ** 20),
  };
}

/** The profile as lines of a table: the `top` kernels by time, then the rest and the overhead. */
export function formatProfile(p: StepProfile, top = 12): string[] {
  const pad = (s: string, n: number) => s.padEnd(n);
  const num = (x: number, n: number) => x.toFixed(0).padStart(n);
  const lines = [`${pad("kernel", 26)} ${"calls".padStart(6)} ${"ms".padStart(8)} ${"share".padStart(6)}  largest output`];
  for (const k of p.kernels.slice(0, top)) {
    lines.push(`${pad(k.kernel, 26)} ${num(k.calls, 6)} ${num(k.ms, 8)} ${(100 * k.share).toFixed(1).padStart(5)}%  [${k.largest.join(", ")}]`);
  }
  const rest = p.kernels.slice(top);
  if (rest.length > 0) {
    const ms = rest.reduce((s, k) => s + k.ms, 0);
    const calls = rest.reduce((s, k) => s + k.calls, 0);
    lines.push(`${pad(`${rest.length} other kernels`, 26)} ${num(calls, 6)} ${num(ms, 8)} ${(p.kernel_ms > 0 ? (100 * ms) / p.kernel_ms : 0).toFixed(1).padStart(5)}%`);
  }
  lines.push(
    `kernels ${p.kernel_ms} ms in ${p.kernel_calls} calls; the step's wall time under the profiler ${p.wall_ms} ms ` +
      `(the difference, ${Math.max(0, p.wall_ms - p.kernel_ms)} ms, is per-op overhead and the profiler's own); ` +
      `tensor memory peak ${p.peak_above_resting_mib} MiB above resting`,
  );
  return lines;
}

/** One more training step on `batch` under the profiler (bench-profile.ts); its table goes to stderr, its top kernels into the JSON. */
export async function profileOneStep(model: GPTModel, optimizer: AdamW, batch: ArrayBatch, step: number, say: (line: string) => void): Promise<StepProfile> {
  const { inputs, targets } = batchTensors(batch); // (B, T) each
  try {
    const p = await profileStep(() => trainStep(model, optimizer, inputs, targets, step));
    say(`profile of one more step on (${inputs.shape.join(", ")}):`);
    for (const line of formatProfile(p)) say(`  ${line}`);
    return { ...p, kernels: p.kernels.slice(0, 12).map((k) => ({ ...k, ms: Math.round(k.ms), share: round(k.share, 2) })) };
  } finally {
    tf.dispose([inputs, targets]);
  }
}
