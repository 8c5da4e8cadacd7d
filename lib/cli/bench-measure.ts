/**
 * What the benchmarks share: their model configs, the median of step times, the process's peak
 * resident memory, and the fields that open their JSON line (which library, on which engine).
 */
import * as fs from "fs";
import * as tf from "@tensorflow/tfjs";
import { BOOK_DROP_RATE } from "../core/book";
import { GPTConfig, GPT2_MEDIUM, GPT2_SMALL, TINY } from "../model/config";

/** The benchmark's configs: issue 4's small one, GPT-2 small and the book's GPT-2 medium, all with the book's dropout for fine-tuning (none). */
export const BENCH_CONFIGS: Record<string, GPTConfig> = {
  "bench-tiny": { ...TINY, dropRate: BOOK_DROP_RATE },
  "gpt2-small": { ...GPT2_SMALL, dropRate: BOOK_DROP_RATE },
  "gpt2-medium": { ...GPT2_MEDIUM, dropRate: BOOK_DROP_RATE },
};

export function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The kernel's high-water mark of this process's resident memory (all threads), in MiB. */
export function peakRssMiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall back to the current RSS
  }
  return process.memoryUsage().rss / 2 ** 20;
}

/** The fields that open a bench's JSON line: the implementation, TF.js and Node versions, and the engine it ran on. */
export function engineFields(engine: { name: string; reason: string }): Record<string, string> {
  return { impl: "tfjs", tfjs: tf.version_core, node: process.version, backend: engine.name, engine: engine.reason };
}
