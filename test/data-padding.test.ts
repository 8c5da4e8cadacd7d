import { test } from "node:test";
import assert from "node:assert/strict";
import { loadInstructionData } from "../lib/data/instruction-data";
import { splitData } from "../lib/data/split";
import { InstructionDataset } from "../lib/data/dataset";
import { collateArrays } from "../lib/data/collate";
import { batchPadding, comparePadding, summarizePadding } from "../lib/data/padding";

test("toy batch: 5 of 15 input positions are padding, the same positions collate pads", () => {
  const batch = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]];
  const [p] = batchPadding([[0, 1, 2]], batch.map((s) => s.length));
  assert.deepEqual(p, { batch: 0, size: 3, length: 5, realTokens: 10, paddingTokens: 5, paddingFraction: 1 / 3 });
  // cross-check against collate: positions past each sequence's own tokens
  const { inputs } = collateArrays(batch);
  const padded = inputs.reduce((sum, row, r) => sum + row.length - batch[r].length, 0);
  assert.equal(padded, p.paddingTokens);
  // cut to 3 positions: the short rows lose padding, the long row loses tokens
  const [cut] = batchPadding([[0, 1, 2]], [5, 2, 3], 3);
  assert.deepEqual([cut.length, cut.realTokens, cut.paddingTokens], [3, 8, 1]);
  const s = summarizePadding([p, cut]);
  assert.deepEqual([s.totalTokens, s.paddingTokens], [24, 6]);
});

test("935 training entries, batch 8: plain ~19% padding, grouped ~1%", async () => {
  const { train } = splitData(await loadInstructionData());
  const { plain, grouped } = comparePadding(new InstructionDataset(train));
  assert.equal(plain.batches.length, 116);
  assert.equal(grouped.batches.length, 116);
  assert.ok(plain.paddingFraction > 0.15 && plain.paddingFraction < 0.25, `plain ${plain.paddingFraction}`);
  assert.ok(grouped.paddingFraction < 0.03, `grouped ${grouped.paddingFraction}`);
  assert.ok(grouped.totalTokens < plain.totalTokens);
});
