// The preference data of ch07/04 (DPO): the shipped file, its validation, the book's split, the dataset, the
// collate function on the book's own example batch (compared with the tensors the book's notebook prints),
// and the loaders.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { DataError } from "../lib/core/errors";
import { DEFAULT_PREFERENCE_FILE, loadPreferenceData } from "../lib/data/preference-data";
import { PreferenceDataset } from "../lib/data/preference-dataset";
import { collatePreference, PreferenceBatch, scoredCount } from "../lib/data/preference-collate";
import { PreferenceLoader } from "../lib/data/preference-loader";
import { splitData } from "../lib/data/split";
import { decodeTokens } from "../lib/data/tokenizer";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "preference-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** The one-line message loading `entries` (as JSON) gives; the message names the file. */
async function errorFor(name: string, entries: unknown): Promise<string> {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, typeof entries === "string" ? entries : JSON.stringify(entries));
  try {
    await loadPreferenceData(file);
  } catch (err) {
    assert.ok(err instanceof DataError, `expected a DataError, got ${err}`);
    const message = (err as Error).message;
    assert.ok(!message.includes("\n"), `one line: ${message}`);
    assert.ok(message.startsWith(file + ": "), `names the file: ${message}`);
    return message.slice(file.length + 2);
  }
  assert.fail(`${name} loaded without an error`);
}

const good = { instruction: "Say hi.", input: "", output: "Hi.", chosen: "Hello there!", rejected: "What do you want?" };

test("the shipped file: 1,100 entries with the five fields, the SHA-256 data/NOTICE records, 935 / 55 / 110", async () => {
  const data = await loadPreferenceData();
  assert.equal(data.length, 1100);
  assert.deepEqual(Object.keys(data[50]), ["instruction", "input", "output", "chosen", "rejected"]);
  // the book prints entry 50: the rejected response is the rude one
  assert.equal(data[50].rejected, "The correct spelling is obviously 'Occasion.'");
  const notice = fs.readFileSync(path.join(path.dirname(DEFAULT_PREFERENCE_FILE), "NOTICE"), "utf8");
  const recorded = /instruction-data-with-preference\.json:[\s\S]*?sha256: ([0-9a-f]{64})/.exec(notice)?.[1];
  assert.equal(createHash("sha256").update(fs.readFileSync(DEFAULT_PREFERENCE_FILE)).digest("hex"), recorded);
  const { train, val, test } = splitData(data);
  assert.deepEqual([train.length, val.length, test.length], [935, 55, 110]);
});

test("bad preference files give one line naming the file, the entry and the field", async () => {
  assert.match(await errorFor("notjson.json", "[{"), /^not valid JSON \(/);
  assert.equal(await errorFor("object.json", { a: 1 }), "expected a JSON array of {instruction, input, output, chosen, rejected} entries, got object");
  assert.equal(await errorFor("empty.json", []), "the array is empty (no entries)");
  const { chosen: _c, ...noChosen } = good;
  assert.equal(await errorFor("no-chosen.json", [good, noChosen]), 'entry 1: field "chosen" is missing');
  assert.equal(await errorFor("blank-rejected.json", [good, good, { ...good, rejected: "  \n" }]), 'entry 2: field "rejected" is empty');
  assert.equal(await errorFor("number.json", [{ ...good, chosen: 3 }]), 'entry 0: field "chosen" must be a string, got number');
  assert.equal(await errorFor("output.json", [{ ...good, output: null }]), 'entry 0: field "output" must be a string, got null');
  assert.equal(await errorFor("entry.json", [good, "text"]), "entry 1: expected an object with instruction/input/chosen/rejected, got string");
  await assert.rejects(loadPreferenceData(path.join(tmp, "absent.json")), /absent\.json: no such file$/);
});

test("a file without `output` (DPO does not need it) loads, with output empty", async () => {
  const file = path.join(tmp, "no-output.json");
  const { output: _o, ...noOutput } = good;
  fs.writeFileSync(file, JSON.stringify([noOutput]));
  assert.deepEqual(await loadPreferenceData(file), [{ ...good, output: "" }]);
});

// The book's notebook, section 2.3: the first two entries collated with batch_size=2 and allowed_max_length=1024.
const BOOK_PROMPTS = [
  [21106, 318, 281, 12064, 326, 8477, 257, 4876, 13, 19430, 257, 2882, 326, 20431, 32543, 262, 2581, 13, 198, 198, 21017, 46486, 25, 198, 36, 2100, 4985, 262, 1708, 9546, 416, 25449, 340, 656, 262, 24993, 1813, 13, 198, 198, 21017, 23412, 25, 198, 19503, 521, 14610, 1545],
  [21106, 318, 281, 12064, 326, 8477, 257, 4876, 13, 19430, 257, 2882, 326, 20431, 32543, 262, 2581, 13, 198, 198, 21017, 46486, 25, 198, 18378, 262, 1708, 6827, 329, 23491, 13, 198, 198, 21017, 23412, 25, 198, 1544, 467, 284, 262, 3952, 790, 1110, 13],
];
const BOOK_CHOSEN = [
  [...BOOK_PROMPTS[0], 198, 198, 21017, 18261, 25, 198, 464, 24993, 286, 262, 1813, 9546, 366, 19503, 521, 1, 318, 11491, 11, 262, 3376, 24993, 318, 366, 6726, 1911, ...new Array(7).fill(50256)],
  [...BOOK_PROMPTS[1], 198, 198, 21017, 18261, 25, 198, 1544, 2925, 284, 262, 3952, 790, 1110, 13, ...new Array(22).fill(50256)],
];

test("the book's example batch: prompts, padded chosen (81 wide), and the chosen mask, exactly as the book prints them", async () => {
  const data = await loadPreferenceData();
  const batch = collatePreference(new PreferenceDataset(data.slice(0, 2)).encoded, { allowedMaxLength: 1024 });
  assert.deepEqual(batch.prompt, BOOK_PROMPTS);
  assert.deepEqual(batch.chosen, BOOK_CHOSEN);
  assert.equal(batch.rejected[0].length, 81);
  // 50 false (the 48 prompt tokens and the two "\n"), 24 true (the response), 7 false (padding)
  assert.deepEqual(batch.chosenMask[0], [...new Array(50).fill(false), ...new Array(24).fill(true), ...new Array(7).fill(false)]);
  const selected = (ids: number[], mask: boolean[]) => decodeTokens(ids.filter((_, t) => mask[t]));
  assert.equal(selected(batch.chosen[0], batch.chosenMask[0]), '### Response:\nThe spelling of the given phrase "freind" is incorrect, the correct spelling is "friend".');
  assert.equal(selected(batch.rejected[0], batch.rejectedMask[0]), '### Response:\nThe spelling of the given phrase "freind" is flat out wrong, get it together, the correct spelling is "friend".');
  assert.ok(decodeTokens(batch.rejected[0]).endsWith('"friend".<|endoftext|>'), "the longest sequence gets one pad token");
});

test("collate: maskPromptTokens false keeps the prompt, allowedMaxLength cuts, and a response cut off entirely is refused naming the entry", async () => {
  const encoded = new PreferenceDataset((await loadPreferenceData()).slice(0, 2)).encoded;
  const all = collatePreference(encoded, { maskPromptTokens: false });
  assert.equal(all.chosenMask[0].filter(Boolean).length, encoded[0].chosen.length);
  const cut = collatePreference(encoded, { allowedMaxLength: 60 });
  assert.ok(cut.chosen.every((row) => row.length === 60) && cut.rejectedMask.every((row) => row.length === 60));
  assert.equal(scoredCount(cut.chosenMask[0]), 10); // positions 50..59
  assert.throws(() => collatePreference(encoded, { allowedMaxLength: 50 }, [7, 8]), /^DataError: entry 7: the chosen response has no token to score within 50 positions \(prompt of 48 tokens, chosen sequence of 74\)$/);
});

test("loaders: the train loader shuffles and drops the last batch, validation keeps order; an entry too long for the context is refused when the loader is made", async () => {
  const { train, val } = splitData(await loadPreferenceData());
  const trainLoader = new PreferenceLoader(new PreferenceDataset(train), { batchSize: 8, shuffle: true, dropLast: true });
  const valLoader = new PreferenceLoader(new PreferenceDataset(val), { batchSize: 8 });
  assert.deepEqual([trainLoader.numBatches, valLoader.numBatches], [116, 7]);
  assert.deepEqual(valLoader.batchIndices()[0], [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.notDeepEqual(trainLoader.batchIndices(0), trainLoader.batchIndices(1));
  const first = trainLoader.batches(0).next().value as PreferenceBatch;
  assert.equal(first.chosen.length, 8);
  assert.ok(first.chosen.every((row, i) => row.length === first.rejected[i].length), "chosen and rejected share one length");
  assert.throws(
    () => new PreferenceLoader(new PreferenceDataset(train.slice(0, 20)), { batchSize: 8, collateOptions: { allowedMaxLength: 40 } }),
    /^DataError: entry \d+: the (chosen|rejected) response has no token to score within 40 positions/,
  );
});
