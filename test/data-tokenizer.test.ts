import { test } from "node:test";
import assert from "node:assert/strict";
import { END_OF_TEXT, decodeTokens, encodeText, getTokenizer } from "../lib/data/tokenizer";
import { InstructionDataset } from "../lib/data/dataset";
import { formatTrainingText } from "../lib/data/prompt";
import { loadInstructionData } from "../lib/data/instruction-data";

test("gpt2 encoding: known ids and the end-of-text id", () => {
  // tiktoken.get_encoding("gpt2").encode("Hello, world. Is this-- a test?")
  assert.deepEqual(encodeText("Hello, world. Is this-- a test?"), [15496, 11, 995, 13, 1148, 428, 438, 257, 1332, 30]);
  assert.equal(END_OF_TEXT, 50256);
  assert.equal(decodeTokens([END_OF_TEXT]), "<|endoftext|>");
  assert.equal(getTokenizer(), getTokenizer()); // built once
});

test("literal <|endoftext|> in data is encoded as text, never as 50256, and round-trips", () => {
  const text = "a <|endoftext|> b";
  const ids = encodeText(text);
  assert.ok(!ids.includes(END_OF_TEXT));
  assert.equal(decodeTokens(ids), text);
  // opt-in: the book's text_to_token_ids(allowed_special={"<|endoftext|>"})
  assert.deepEqual(encodeText(text, { allowEndOfText: true }), [64, 220, END_OF_TEXT, 275]);
});

test("InstructionDataset pre-tokenizes prompt + response, without an end-of-text", async () => {
  const data = (await loadInstructionData()).slice(0, 20);
  const ds = new InstructionDataset(data);
  assert.equal(ds.length, 20);
  assert.deepEqual(ds.get(3), encodeText(formatTrainingText(data[3])));
  assert.equal(decodeTokens(ds.encoded[7]), formatTrainingText(data[7]));
  assert.ok(ds.encoded.every((ids) => !ids.includes(END_OF_TEXT)));
  const lengths = ds.lengths();
  const longest = Math.max(...lengths);
  assert.deepEqual(ds.longerThan(longest), []);
  assert.deepEqual(ds.longerThan(longest - 1), [lengths.indexOf(longest)]);
});
