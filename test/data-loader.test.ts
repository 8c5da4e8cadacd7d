import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { loadInstructionData } from "../lib/data/instruction-data";
import { splitData } from "../lib/data/split";
import { InstructionDataset } from "../lib/data/dataset";
import { DataLoader } from "../lib/data/loader";
import { collateArrays } from "../lib/data/collate";
import { ConfigError, DataError } from "../lib/core/errors";

/** A dataset of `n` sequences where sequence i is [i, i, …] of length 1 + i % 7. */
function toy(n: number) {
  return { encoded: Array.from({ length: n }, (_, i) => new Array<number>(1 + (i % 7)).fill(i)) };
}

const sorted = (batches: number[][]) => batches.flat().sort((a, b) => a - b);

test("the book's loaders: train 935 -> 116 batches of 8; val 55 -> 7; test 110 -> 14", async () => {
  const { train, test: testSet, val } = splitData(await loadInstructionData());
  const trainLoader = new DataLoader(new InstructionDataset(train), { batchSize: 8, shuffle: true, dropLast: true, seed: 123 });
  const valLoader = new DataLoader(new InstructionDataset(val), { batchSize: 8 });
  const testLoader = new DataLoader(new InstructionDataset(testSet), { batchSize: 8 });
  assert.equal(trainLoader.numBatches, 116);
  assert.equal(valLoader.numBatches, 7);
  assert.equal(testLoader.numBatches, 14);

  const indices = trainLoader.batchIndices(0);
  assert.equal(indices.length, 116);
  assert.ok(indices.every((b) => b.length === 8));
  assert.equal(new Set(indices.flat()).size, 928); // no repeats; 7 dropped
  assert.deepEqual(valLoader.batchIndices(0).flat(), Array.from({ length: 55 }, (_, i) => i)); // file order
  assert.equal(valLoader.batchIndices(0)[6].length, 7); // last batch kept

  // tensors: every batch is 8 × its own longest length, int32; nothing leaks
  const before = tf.memory().numTensors;
  let count = 0;
  for (const { inputs, targets } of trainLoader.batches(0)) {
    assert.equal(inputs.dtype, "int32");
    assert.deepEqual(inputs.shape, targets.shape);
    const longest = Math.max(...indices[count].map((i) => trainLoader.dataset.encoded[i].length));
    assert.deepEqual(inputs.shape, [8, longest]);
    tf.dispose([inputs, targets]);
    count++;
  }
  assert.equal(count, 116);
  assert.equal(tf.memory().numTensors, before);
});

test("shuffle order depends only on (seed, epoch): reproducible, different per epoch and seed", () => {
  const opts = { batchSize: 4, shuffle: true, dropLast: true, seed: 7 };
  const a = new DataLoader(toy(50), opts);
  const b = new DataLoader(toy(50), opts);
  b.batchIndices(3); // asking for another epoch first must not change anything
  assert.deepEqual(a.batchIndices(1), b.batchIndices(1));
  assert.notDeepEqual(a.batchIndices(0), a.batchIndices(1));
  assert.notDeepEqual(a.batchIndices(0), new DataLoader(toy(50), { ...opts, seed: 8 }).batchIndices(0));
  assert.equal(a.batchIndices(0).flat().length, 48);
  assert.deepEqual(sorted(new DataLoader(toy(50), { ...opts, dropLast: false }).batchIndices(0)), [...Array(50).keys()]);
});

test("batches(epoch, startBatch) resumes mid-epoch with the same batches", () => {
  const loader = new DataLoader(toy(30), { batchSize: 4, shuffle: true, dropLast: true, seed: 1 });
  const all = [...loader.arrayBatches(2)];
  assert.equal(all.length, 7);
  assert.deepEqual([...loader.arrayBatches(2, 5)], all.slice(5));
  const [first] = loader.batches(2, 5);
  assert.deepEqual(first.inputs.arraySync(), all[5].inputs);
  assert.deepEqual(first.targets.arraySync(), all[5].targets);
  tf.dispose([first.inputs, first.targets]);
});

test("collate options reach the batches; iterating the loader gives epoch 0", () => {
  const data = toy(10);
  const loader = new DataLoader(data, { batchSize: 5, collateOptions: { allowedMaxLength: 3 } });
  const [batch] = loader.arrayBatches(0);
  assert.deepEqual(batch, collateArrays(data.encoded.slice(0, 5), { allowedMaxLength: 3 }));
  let n = 0;
  for (const { inputs, targets } of loader) {
    assert.equal(inputs.shape[1], 3);
    tf.dispose([inputs, targets]);
    n++;
  }
  assert.equal(n, 2);
});

test("bad loader settings are one-line errors", () => {
  assert.throws(() => new DataLoader(toy(5), { batchSize: 0 }), ConfigError);
  assert.throws(() => new DataLoader(toy(5), { batchSize: 2.5 }), ConfigError);
  assert.throws(() => new DataLoader(toy(5), { batchSize: 2, groupByLength: { megaBatchFactor: 0 } }), ConfigError);
  assert.throws(
    () => new DataLoader(toy(5), { batchSize: 8, dropLast: true }),
    (err: Error) => err instanceof DataError && err.message === "DataLoader: 5 sequences give no batch of 8 with dropLast",
  );
  assert.throws(() => new DataLoader(toy(0), { batchSize: 8 }), DataError);
});
