import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { collateArrays } from "../lib/data/collate";

// Made by test/reference/collate_reference.py with the book's PyTorch custom_collate_fn:
// random batches, truncation, equal lengths, and items that already contain 50256.
interface Case {
  batch: number[][];
  allowed_max_length: number | null;
  inputs: number[][];
  targets: number[][];
}
const fixture = JSON.parse(
  fs.readFileSync(path.join(__dirname, "fixtures", "collate-golden.json"), "utf8"),
) as { cases: Case[] };

test("collate equals the book's PyTorch custom_collate_fn on every golden case", () => {
  assert.ok(fixture.cases.length >= 10);
  for (const [i, c] of fixture.cases.entries()) {
    const got = collateArrays(c.batch, { allowedMaxLength: c.allowed_max_length ?? undefined });
    assert.deepEqual(got, { inputs: c.inputs, targets: c.targets }, `case ${i}`);
  }
});
