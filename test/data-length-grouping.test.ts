import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../lib/core/random";
import { cutBatches, lengthGroupedBatches } from "../lib/data/length-grouping";
import { DataLoader } from "../lib/data/loader";
import { batchPadding, summarizePadding } from "../lib/data/padding";

// 100 sequences with lengths 1..100 in a scrambled order
const lengths = new Rng(99).permutation(100).map((i) => i + 1);

test("cutBatches keeps or drops the short last batch", () => {
  assert.deepEqual(cutBatches([0, 1, 2, 3, 4], 2, false), [[0, 1], [2, 3], [4]]);
  assert.deepEqual(cutBatches([0, 1, 2, 3, 4], 2, true), [[0, 1], [2, 3]]);
});

test("grouped batches: every index once, similar lengths together, far less padding", () => {
  const grouped = lengthGroupedBatches(lengths, { batchSize: 4, dropLast: false, rng: new Rng(1), megaBatchFactor: 5 });
  assert.equal(grouped.length, 25);
  assert.deepEqual(grouped.flat().sort((a, b) => a - b), [...Array(100).keys()]);
  const plain = cutBatches(new Rng(1).permutation(100), 4, false);
  const g = summarizePadding(batchPadding(grouped, lengths));
  const p = summarizePadding(batchPadding(plain, lengths));
  assert.ok(g.paddingFraction < p.paddingFraction / 2, `${g.paddingFraction} vs ${p.paddingFraction}`);
  // within a batch, lengths come from one sorted mega-batch: sorted descending
  for (const batch of grouped) {
    const ls = batch.map((i) => lengths[i]);
    assert.deepEqual(ls, [...ls].sort((a, b) => b - a));
  }
});

test("grouped batches are still shuffled: the batch order is not long-to-short", () => {
  const grouped = lengthGroupedBatches(lengths, { batchSize: 4, dropLast: false, rng: new Rng(2), megaBatchFactor: 25 });
  // one mega-batch holds everything; unshuffled, the longest batch would come first
  const firsts = grouped.map((b) => lengths[b[0]]);
  assert.notDeepEqual(firsts, [...firsts].sort((a, b) => b - a));
  // without an rng: file order, sorted within the one mega-batch
  const unshuffled = lengthGroupedBatches(lengths, { batchSize: 4, dropLast: false, megaBatchFactor: 25 });
  assert.deepEqual(unshuffled[0].map((i) => lengths[i]), [100, 99, 98, 97]);
});

test("dropLast drops one short batch; the DataLoader's grouped order is reproducible per (seed, epoch)", () => {
  const dataset = { encoded: lengths.slice(0, 43).map((n) => new Array<number>(n).fill(1)) };
  const opts = { batchSize: 4, shuffle: true, dropLast: true, seed: 5, groupByLength: { megaBatchFactor: 3 } };
  const loader = new DataLoader(dataset, opts);
  const batches = loader.batchIndices(0);
  assert.equal(batches.length, 10);
  assert.equal(loader.numBatches, 10);
  assert.ok(batches.every((b) => b.length === 4));
  assert.equal(new Set(batches.flat()).size, 40);
  assert.deepEqual(new DataLoader(dataset, opts).batchIndices(0), batches);
  assert.notDeepEqual(loader.batchIndices(1), batches);
  assert.equal(new DataLoader(dataset, { ...opts, dropLast: false }).batchIndices(0).length, 11);
});
