import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { collateDraft1, collateDraft2 } from "../lib/data/collate-drafts";
import { collate, collateArrays } from "../lib/data/collate";

// The book's toy batch (section 7.3)
const BATCH = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]];
const BOOK_INPUTS = [
  [0, 1, 2, 3, 4],
  [5, 6, 50256, 50256, 50256],
  [7, 8, 9, 50256, 50256],
];
const BOOK_TARGETS_UNMASKED = [
  [1, 2, 3, 4, 50256],
  [6, 50256, 50256, 50256, 50256],
  [8, 9, 50256, 50256, 50256],
];
const BOOK_TARGETS = [
  [1, 2, 3, 4, 50256],
  [6, 50256, -100, -100, -100],
  [8, 9, 50256, -100, -100],
];

test("draft 1: inputs only, as in the book", () => {
  const before = tf.memory().numTensors;
  const inputs = collateDraft1(BATCH);
  assert.equal(inputs.dtype, "int32");
  assert.deepEqual(inputs.arraySync(), BOOK_INPUTS);
  inputs.dispose();
  assert.equal(tf.memory().numTensors, before);
});

test("draft 2: inputs and unmasked targets, as in the book", () => {
  const { inputs, targets } = collateDraft2(BATCH);
  assert.deepEqual(inputs.arraySync(), BOOK_INPUTS);
  assert.deepEqual(targets.arraySync(), BOOK_TARGETS_UNMASKED);
  tf.dispose([inputs, targets]);
});

test("final collate: padding after the first end-of-text is -100, as in the book", () => {
  const before = tf.memory().numTensors;
  const { inputs, targets } = collate(BATCH);
  assert.equal(inputs.dtype, "int32");
  assert.equal(targets.dtype, "int32");
  assert.deepEqual(inputs.shape, [3, 5]);
  assert.deepEqual(inputs.arraySync(), BOOK_INPUTS);
  assert.deepEqual(targets.arraySync(), BOOK_TARGETS);
  tf.dispose([inputs, targets]);
  assert.equal(tf.memory().numTensors, before);
  assert.deepEqual(collateArrays(BATCH), { inputs: BOOK_INPUTS, targets: BOOK_TARGETS });
});

test("allowedMaxLength cuts inputs and targets after masking", () => {
  const { inputs, targets } = collateArrays(BATCH, { allowedMaxLength: 3 });
  assert.deepEqual(inputs, BOOK_INPUTS.map((r) => r.slice(0, 3)));
  assert.deepEqual(targets, [
    [1, 2, 3],
    [6, 50256, -100],
    [8, 9, 50256],
  ]);
  // longer than the batch: no effect
  assert.deepEqual(collateArrays(BATCH, { allowedMaxLength: 1024 }).targets, BOOK_TARGETS);
});

test("custom pad and ignore values", () => {
  const { inputs, targets } = collateArrays([[1, 2], [3]], { padTokenId: 0, ignoreIndex: -1 });
  assert.deepEqual(inputs, [[1, 2], [3, 0]]);
  assert.deepEqual(targets, [[2, 0], [0, -1]]);
});

test("bad arguments are one-line errors", () => {
  assert.throws(() => collateArrays([]), /collate: the batch is empty/);
  assert.throws(() => collateArrays(BATCH, { allowedMaxLength: 0 }), /allowedMaxLength must be a positive integer/);
});
