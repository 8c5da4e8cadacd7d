import { test } from "node:test";
import assert from "node:assert/strict";
import { loadInstructionData } from "../lib/data/instruction-data";
import { splitData } from "../lib/data/split";
import { DataError } from "../lib/core/errors";

test("the book's split: 935 / 110 / 55, in file order", async () => {
  const data = await loadInstructionData();
  assert.equal(data.length, 1100);
  const { train, test: testSet, val } = splitData(data);
  assert.equal(train.length, 935);
  assert.equal(testSet.length, 110);
  assert.equal(val.length, 55);
  assert.deepEqual(train[0], data[0]);
  assert.deepEqual(testSet[0], data[935]);
  assert.deepEqual(val[0], data[1045]);
  assert.deepEqual(val[54], data[1099]);
});

test("int() truncation like Python: 21 entries -> 17 / 2 / 2", () => {
  const items = Array.from({ length: 21 }, (_, i) => i);
  const s = splitData(items);
  assert.deepEqual([s.train.length, s.test.length, s.val.length], [17, 2, 2]);
  assert.deepEqual([...s.train, ...s.test, ...s.val], items);
});

test("a dataset too small for three splits is refused, naming the source", () => {
  assert.throws(() => splitData([1, 2, 3, 4, 5], { source: "tiny.json" }), (err: Error) => {
    assert.ok(err instanceof DataError);
    assert.match(err.message, /^tiny\.json: the test split is empty \(5 entries give 4\/0\/1/);
    return true;
  });
  const s = splitData([1, 2, 3, 4, 5], { allowEmpty: true });
  assert.deepEqual(s, { train: [1, 2, 3, 4], test: [], val: [5] });
});
