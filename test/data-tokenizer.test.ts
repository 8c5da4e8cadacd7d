import { test } from "node:test";
import assert from "node:assert/strict";
import { END_OF_TEXT, decodeTokens, encodeText, getTokenizer } from "../lib/data/tokenizer";
import { InstructionDataset } from "../lib/data/dataset";
import { formatTrainingText } from "../lib/data/prompt";
import { loadInstructionData } from "../lib/data/instruction-data";

test("gpt2 encoding: known ids and the end-of-text id", () => {
  // the book's printed output (section 2.5) for tiktoken's gpt2 with allowed_special={"<|endoftext|>"}
  const text = "Hello, do you like tea? <|endoftext|> In the sunlit terraces of someunknownPlace.";
  const book = [15496, 11, 466, 345, 588, 8887, 30, 220, 50256, 554, 262, 4252, 18250, 8812, 2114, 286, 617, 34680, 27271, 13];
  assert.deepEqual(encodeText(text, { allowEndOfText: true }), book);
  assert.equal(decodeTokens(book), text);
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
  assert.equal(ds.truncationNotice(longest), undefined);
  assert.equal(
    ds.truncationNotice(longest - 1, "train split"),
    `train split: 1 of 20 entries are longer than ${longest - 1} tokens and are cut to fit (entries ${lengths.indexOf(longest)})`,
  );
});
