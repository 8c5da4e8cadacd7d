// The PyTorch golden fixtures (test/fixtures/*.json, written by the scripts in test/reference/), read the same
// way by every test that compares against them.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import type { GPTConfig } from "../../lib/model/config";

/** What every GPT golden fixture holds: the model, a batch, and PyTorch's logits, log-sum-exp, argmax and loss. */
export interface GoldenCommon {
  formulaVersion: number;
  config: GPTConfig;
  inputs: number[][];
  targets: number[][];
  logitSlices: Array<{ start: number; values: number[][][] }>;
  logsumexp: number[][];
  argmax: number[][];
  loss: number;
}

/** fixtures/gpt-golden-<name>.json (test/reference/gpt_reference.py): the book's GPTModel on deterministic weights. */
export interface Golden extends GoldenCommon {
  tiedHead: boolean;
  lossAllKept: number;
  grads: Record<string, { first: number[]; norm: number }>;
  prompt: number[][];
  greedy: number[][];
}

/** A fixture file, parsed. */
export function readFixture<T>(file: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", file), "utf8")) as T;
}

/** fixtures/gpt-golden-<name>.json */
export const golden = (name: string): Golden => readFixture<Golden>(`gpt-golden-${name}.json`);

/** The largest |a[i] - b[i]|; the lengths must agree. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}
