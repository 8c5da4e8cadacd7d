// ROUGE-L F1 (lib/eval/rouge.ts): hand-computed cases, and agreement with an independent
// implementation (the js-rouge package's ROUGE-L, given the same tokens and one sentence per text).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as jsRouge from "js-rouge";
import fc from "fast-check";
import { lcsLength, rougeL, rougeTokens } from "../lib/eval/rouge";

test("tokens as rouge-score makes them: lower case, letters and digits only", () => {
  assert.deepEqual(rougeTokens("The author of 'Pride and Prejudice' is Jane Austen."), ["the", "author", "of", "pride", "and", "prejudice", "is", "jane", "austen"]);
  assert.deepEqual(rougeTokens("45,000 km!"), ["45", "000", "km"]);
  assert.deepEqual(rougeTokens("  ...  "), []);
});

test("hand-computed ROUGE-L", () => {
  assert.equal(lcsLength(["a", "b", "c", "d"], ["a", "c", "b", "d"]), 3);
  // "jane austen" is all of the response and 2 of the reference's 9 words
  const r = rougeL("Jane Austen.", "The author of 'Pride and Prejudice' is Jane Austen.");
  assert.equal(r.precision, 1);
  assert.equal(r.recall, 2 / 9);
  assert.ok(Math.abs(r.f1 - (2 * 1 * (2 / 9)) / (1 + 2 / 9)) < 1e-12);
  assert.deepEqual(rougeL("same words here", "Same words, here!"), { precision: 1, recall: 1, f1: 1 });
  assert.deepEqual(rougeL("", "anything"), { precision: 0, recall: 0, f1: 0 });
  assert.deepEqual(rougeL("cat", "dog"), { precision: 0, recall: 0, f1: 0 });
});

test("agrees with js-rouge's ROUGE-L on random texts (same tokens, one sentence each)", () => {
  const word = fc.constantFrom("the", "cat", "sat", "on", "mat", "a", "dog", "ran", "is", "jane", "austen", "rome");
  const text = fc.array(word, { minLength: 1, maxLength: 14 }).map((w) => w.join(" "));
  fc.assert(
    fc.property(text, text, (a, b) => {
      const ours = rougeL(a, b).f1;
      const theirs = jsRouge.l(a, b, { tokenizer: rougeTokens, segmenter: (s: string) => [s] });
      assert.ok(Math.abs(ours - theirs) < 1e-12, `${a} | ${b}: ${ours} vs ${theirs}`);
    }),
    { seed: 123, numRuns: 500 },
  );
});
