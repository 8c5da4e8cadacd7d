import { test } from "node:test";
import assert from "node:assert/strict";
import { loadInstructionData } from "../lib/data/instruction-data";
import { formatInput, formatTrainingText } from "../lib/data/prompt";

// The book's printed output (section 7.2) for entries 50 and 999, written out by hand.
const BOOK_ENTRY_50 = `Below is an instruction that describes a task. Write a response that appropriately completes the request.

### Instruction:
Identify the correct spelling of the following word.

### Input:
Ocassion

### Response:
The correct spelling is 'Occasion.'`;

const BOOK_ENTRY_999 = `Below is an instruction that describes a task. Write a response that appropriately completes the request.

### Instruction:
What is an antonym of 'complicated'?

### Response:
An antonym of 'complicated' is 'simple'.`;

test("entry 50 (with an input) matches the book byte for byte", async () => {
  const data = await loadInstructionData();
  const entry = data[50];
  assert.equal(entry.input, "Ocassion");
  assert.equal(formatInput(entry) + `\n\n### Response:\n${entry.output}`, BOOK_ENTRY_50);
  assert.equal(formatTrainingText(entry), BOOK_ENTRY_50);
});

test("entry 999 (no input) has no '### Input:' block", async () => {
  const data = await loadInstructionData();
  const entry = data[999];
  assert.equal(entry.input, "");
  assert.equal(formatTrainingText(entry), BOOK_ENTRY_999);
  assert.ok(!formatInput(entry).includes("### Input:"));
});

test("formatInput ends right after the instruction or input (no trailing response header)", () => {
  assert.equal(
    formatInput({ instruction: "Say hi.", input: "" }),
    "Below is an instruction that describes a task. Write a response that appropriately completes the request." +
      "\n\n### Instruction:\nSay hi.",
  );
  assert.ok(formatInput({ instruction: "Say hi.", input: "Bob" }).endsWith("\n\n### Input:\nBob"));
});
