// Exercises 7.1 and 7.2 in the data pipeline: the Phi-3 prompt format, and instruction masking
// in the targets, pinned to the tensors the book's exercise solution prints.
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadInstructionData } from "../lib/data/instruction-data";
import { formatInput, formatTrainingText, responseMarker } from "../lib/data/prompt";
import { InstructionDataset } from "../lib/data/dataset";
import { collateArrays } from "../lib/data/collate";
import { DataLoader } from "../lib/data/loader";
import { encodeText } from "../lib/data/tokenizer";
import { extractResponse } from "../lib/generate/generate";

test("exercise 7.1: the Phi-3 format of entries 50 and 999, as the book's solution prints them", async () => {
  const data = await loadInstructionData();
  assert.equal(formatInput(data[50], "phi3"), "<|user|>\nIdentify the correct spelling of the following word.\nOcassion");
  assert.equal(formatInput(data[999], "phi3"), "<|user|>\nWhat is an antonym of 'complicated'?");
  assert.equal(formatTrainingText(data[999], "phi3"), "<|user|>\nWhat is an antonym of 'complicated'?\n<|assistant|>:\nAn antonym of 'complicated' is 'simple'.");
  assert.equal(responseMarker("phi3"), "<|assistant|>:");
  assert.equal(responseMarker("alpaca"), "### Response:");
  // the alpaca default is unchanged
  assert.equal(formatInput(data[50]), formatInput(data[50], "alpaca"));
  // <|user|> is plain text to GPT-2's tokenizer: ordinary tokens, never the end-of-text 50256
  assert.ok(!encodeText(formatTrainingText(data[50], "phi3")).includes(50256));
  // and shorter than the Alpaca text, the point of the exercise
  const tokens = (style: "alpaca" | "phi3") => data.reduce((n, e) => n + encodeText(formatTrainingText(e, style)).length, 0);
  assert.ok(tokens("phi3") < 0.75 * tokens("alpaca"), `${tokens("phi3")} vs ${tokens("alpaca")}`);
});

// The book's exercise 7.2 sample batch and what its solution prints for the second row
const SAMPLE = [
  { instruction: "What is an antonym of 'complicated'?", input: "", output: "An antonym of 'complicated' is 'simple'." },
  { instruction: "Sort the following list in alphabetical order.", input: "Zebra, Elephant, Crocodile", output: "Crocodile, Elephant, Zebra" },
  { instruction: "Arrange the given numbers in descending order.", input: "5, 12, 8, 3, 15", output: "15, 12, 8, 5, 3." },
];
const BOOK_INPUTS_1 = [
  21106, 318, 281, 12064, 326, 8477, 257, 4876, 13, 19430, 257, 2882, 326, 20431, 32543, 262, 2581, 13, 198, 198,
  21017, 46486, 25, 198, 42758, 262, 1708, 1351, 287, 24830, 605, 1502, 13, 198, 198, 21017, 23412, 25, 198, 57,
  37052, 11, 42651, 11, 9325, 19815, 576, 198, 198, 21017, 18261, 25, 198, 34, 12204, 375, 576, 11, 42651, 11,
  1168, 37052, 50256, 50256,
];
const BOOK_TARGETS_1 = [
  ...new Array(46).fill(-100),
  198, 198, 21017, 18261, 25, 198, 34, 12204, 375, 576, 11, 42651, 11, 1168, 37052, 50256, -100, -100,
];

test("exercise 7.2: the masked batch of the book's three samples is the book's tensor, exactly", () => {
  const ds = new InstructionDataset(SAMPLE, { maskInstructions: true });
  assert.deepEqual(ds.promptLengths, SAMPLE.map((e) => encodeText(formatInput(e)).length));
  assert.equal(ds.promptLengths?.[1], 47);
  const loader = new DataLoader(ds, { batchSize: 3 });
  const [batch] = [...loader.arrayBatches(0)];
  assert.deepEqual([batch.inputs.length, batch.inputs[0].length], [3, 64]);
  assert.deepEqual(batch.inputs[1], BOOK_INPUTS_1);
  assert.deepEqual(batch.targets[1], BOOK_TARGETS_1);
  // every row: prompt targets masked, the rest as without masking
  const plain = collateArrays(ds.encoded);
  batch.targets.forEach((row, r) => {
    const L = (ds.promptLengths as number[])[r];
    assert.deepEqual(row.slice(0, L - 1), new Array(L - 1).fill(-100), `row ${r}`);
    assert.deepEqual(row.slice(L - 1), plain.targets[r].slice(L - 1), `row ${r}`);
  });
  // the tensor batches are the same numbers
  const { inputs, targets } = loader.batches(0).next().value!;
  assert.deepEqual(targets.arraySync(), batch.targets);
  inputs.dispose();
  targets.dispose();
});

test("exercise 7.2 on the book's toy batch: prompt lengths 3, 1, 2 mask the first 2, 0, 1 targets; then the cut to allowedMaxLength", () => {
  const toy = [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]];
  assert.deepEqual(collateArrays(toy, {}, [3, 1, 2]).targets, [
    [-100, -100, 3, 4, 50256],
    [6, 50256, -100, -100, -100],
    [-100, 9, 50256, -100, -100],
  ]);
  assert.deepEqual(collateArrays(toy, { allowedMaxLength: 3 }, [3, 1, 2]).targets, [[-100, -100, 3], [6, 50256, -100], [-100, 9, 50256]]);
  // a prompt longer than the cut leaves a row with nothing to score
  assert.deepEqual(collateArrays(toy, { allowedMaxLength: 2 }, [5, 1, 2]).targets[0], [-100, -100]);
  assert.throws(() => collateArrays(toy, {}, [1, 2]), /2 prompt lengths for a batch of 3/);
});

test("without maskInstructions the dataset has no prompt lengths and batches are the chapter's", () => {
  const ds = new InstructionDataset(SAMPLE);
  assert.equal(ds.promptLengths, undefined);
  const [batch] = [...new DataLoader(ds, { batchSize: 3 }).arrayBatches(0)];
  assert.deepEqual(batch, collateArrays(ds.encoded));
});

test("phi3 + masking: the prompt lengths are those of the Phi-3 prompt", () => {
  const ds = new InstructionDataset(SAMPLE, { promptStyle: "phi3", maskInstructions: true });
  assert.deepEqual(ds.promptLengths, SAMPLE.map((e) => encodeText(formatInput(e, "phi3")).length));
  assert.deepEqual(ds.encoded[0], encodeText(formatTrainingText(SAMPLE[0], "phi3")));
});

test("exercise 7.1: the response is taken out of a generated text with the Phi-3 header removed", () => {
  const entry = { instruction: "Name the author of 'Pride and Prejudice'.", input: "" };
  const prompt = formatInput(entry, "phi3");
  assert.equal(extractResponse(`${prompt}\n<|assistant|>:\nJane Austen. `, prompt, "phi3"), "Jane Austen.");
  // the Alpaca header stays in a Phi-3 answer (it is not this format's marker), and the other way round
  assert.equal(extractResponse(`${prompt}\n### Response:\nx`, prompt, "phi3"), "### Response:\nx");
  const alpaca = formatInput(entry);
  assert.equal(extractResponse(`${alpaca}\n\n### Response:\nJane Austen.`, alpaca), "Jane Austen.");
});
