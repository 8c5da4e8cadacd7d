// %% [markdown]
// # 01 · The instruction dataset and the Alpaca prompt format
//
// *Chapter 7, section 7.2 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// A pretrained GPT-2 continues text; it does not follow instructions. Instruction fine-tuning teaches it to,
// by training on pairs of *an instruction* and *the response we want*. This notebook looks at those pairs
// before any model is involved:
//
// 1. load the 1,100 instruction–response entries the book uses and look at two of them;
// 2. turn an entry into the text the model actually reads, with the **Alpaca prompt format**;
// 3. measure the entries (a table of a few of them and of their lengths), because the lengths decide how
//    much padding the batches of notebooks 02 and 03 will carry;
// 4. split the data into training, validation and test sets: 935 / 55 / 110 entries;
// 5. look for near-duplicates among the entries, with the book's tool for it.
//
// Everything here is imported from the course library (`lib/`, loaded as `@course/lib`); the notebook is the
// prose around it.

// %% [markdown]
// The first cell lets the TypeScript kernel (tslab) load the library straight from its `.ts` source files.
// Every notebook of the course starts with it.

// %%
import "tsx/cjs";

// %% [markdown]
// Then the imports. `initEngine()` picks the fastest TensorFlow.js backend this machine has (native TensorFlow,
// else WebAssembly, else plain JavaScript) and says which one it chose. This notebook barely computes, but
// danfojs, the table library used below, runs on TensorFlow.js too.

// %%
// danfojs declares its types only in its package "exports" map, which the TypeScript inside tslab does not
// read; so the types come from their file and the module from a plain require.
import type * as Danfo from "danfojs/dist/danfojs-browser/src/index";
const dfd: typeof Danfo = require("danfojs");
import {
  initEngine, loadInstructionData, formatInput, formatTrainingText, splitData, encodeText, showTable,
  findNearDuplicates, searchNearDuplicates, formatSimilarity, NEAR_DUPLICATE_THRESHOLD,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## The data
//
// The dataset ships with the repository in `data/instruction-data.json` (from the book's repository,
// Apache-2.0; see `data/NOTICE`). `loadInstructionData` reads it, downloads it only when the file is missing,
// and checks that every entry has the three string fields; a malformed entry is reported by its index and field.

// %% tags=["count"]
const data = await loadInstructionData();
console.log("Number of entries:", data.length);

// %% [markdown]
// Each entry is an object with an `instruction`, an optional `input` the instruction refers to, and the
// `output` we want the model to produce. Entry 50 has an input:

// %% tags=["entry-50"]
console.log("Example entry:\n", data[50]);

// %% [markdown]
// Entry 999 has none: its `input` is the empty string. About 70% of the entries are like this.

// %% tags=["entry-999"]
console.log("Another example entry:\n", data[999]);
console.log("Entries with an empty input:", data.filter((entry) => entry.input === "").length);

// %% [markdown]
// ## The Alpaca prompt format
//
// The model only ever sees one stream of text, so an entry has to be written out as text. The book uses the
// format of Stanford's Alpaca: a fixed opening sentence, then `### Instruction:`, then `### Input:` (only when
// there is an input), then `### Response:` followed by the answer. The headers give the model fixed landmarks:
// after fine-tuning, it learns that what follows `### Response:` is its turn to write. (Other formats exist,
// e.g. Phi-3's shorter `<|user|>` / `<|assistant|>` one; the book compares them in an exercise.)
//
// Alpaca's format is made for **one-shot** use: one instruction, perhaps an input, one response, and done. Chat
// formats instead have a system prompt and alternating user and assistant turns. Giles Thomas's blog post
// [*Writing an LLM from scratch, part 25 — instruction fine-tuning*](https://www.gilesthomas.com/2025/10/llm-from-scratch-25-instruction-fine-tuning)
// (29 October 2025), which this course follows through chapter 7, points out the difference: Alpaca dates from
// early 2023, when context windows were short and one instruction with its answer was the unit of work, and a
// model fine-tuned on it learns to answer one request, not to hold a conversation.
//
// `formatInput` writes the prompt, everything except the response, byte for byte as the book's `format_input`.
// Here is entry 50 with its desired response appended:

// %% tags=["prompt-50"]
const modelInput = formatInput(data[50]);
const desiredResponse = `\n\n### Response:\n${data[50].output}`;
console.log(modelInput + desiredResponse);

// %% [markdown]
// And entry 999, whose empty input leaves out the `### Input:` block altogether (an empty header would only
// teach the model to expect nothing there):

// %% tags=["prompt-999"]
console.log(formatInput(data[999]) + `\n\n### Response:\n${data[999].output}`);

// %% [markdown]
// For training, the library appends the response the same way: `formatTrainingText(entry)` is
// `formatInput(entry) + "\n\n### Response:\n" + entry.output`. That full text is what gets tokenized.

// %% tags=["training-text"]
console.log(formatTrainingText(data[999]) === formatInput(data[999]) + `\n\n### Response:\n${data[999].output}`);

// %% [markdown]
// ## A look at the table
//
// danfojs gives TypeScript a pandas-like DataFrame; the library's `showTable` renders one as an HTML table in
// the notebook. A few entries (long texts shortened for the view):

// %% tags=["table-entries"]
const shown = [0, 1, 2, 50, 999];
const someEntries = new dfd.DataFrame(shown.map((i) => data[i]), { index: shown });
showTable(someEntries, { caption: "Entries 0, 1, 2, 50 and 999", maxCellChars: 70 });

// %% [markdown]
// ## How long are the entries?
//
// Lengths matter twice later on. A batch is padded to its longest entry, so the spread of lengths is how much
// padding (wasted computation) a batch carries — notebook 03 measures it. And GPT-2 reads at most 1,024 tokens,
// so anything longer would have to be cut. Below: the length of each field in characters, and the length of the
// full training text in GPT-2 tokens (the unit the model counts in).

// %% tags=["table-lengths"]
const lengths = new dfd.DataFrame(
  data.map((entry) => ({
    instructionChars: entry.instruction.length,
    inputChars: entry.input.length,
    outputChars: entry.output.length,
    tokens: encodeText(formatTrainingText(entry)).length,
  })),
);
showTable(lengths.describe().round(1), { caption: "Length statistics over all 1,100 entries" });

// %% [markdown]
// The training texts run from 40 to 91 tokens, far below 1,024, so nothing needs cutting. But they vary more
// than twofold: padded into a batch with a 91-token entry, a 40-token entry is more than half padding.

// %% [markdown]
// ## Training, validation and test sets
//
// Like the book, the split is in file order: the first 85% of the entries for training,
// the next 10% for testing, and the remaining 5% for validation, which is what we watch during training to
// see whether the model is learning or just memorising.

// %% tags=["split-sizes"]
const { train, test, val } = splitData(data);
console.log("Training set length:", train.length);
console.log("Validation set length:", val.length);
console.log("Test set length:", test.length);

// %% [markdown]
// ## Near-duplicates
//
// A dataset assembled by hand or by a model easily holds the same example twice, or two that differ by a word.
// They waste training steps, and a pair split between the training and the test set lets the test reward
// memorising. The book's repository has a tool for finding them (chapter 7's `02_dataset-utilities`,
// `find-near-duplicates.py`); here it is `npm run near-duplicates` and the library's `findNearDuplicates`.
// Each text is lowercased and stripped of punctuation, turned into a TF-IDF vector over its character
// 1-, 2- and 3-grams (each snippet weighted by how rare it is across the 1,100 texts), and two texts whose
// vectors have a cosine similarity above 0.75 are a near-duplicate pair. The numbers equal scikit-learn's,
// which the book uses (a test compares them). How many pairs each field has:

// %% tags=["near-duplicates"]
for (const field of ["instruction", "input", "output"]) {
  const pairs = findNearDuplicates(data, field, NEAR_DUPLICATE_THRESHOLD);
  const identical = pairs.filter((p) => p.similarity > 0.9999).length;
  console.log(`${field}: ${pairs.length} near-duplicate pairs (${identical} identical once lowercased and without punctuation)`);
}
const { kept } = searchNearDuplicates(data, { threshold: NEAR_DUPLICATE_THRESHOLD, remove: true });
console.log(`With --remove-duplicates, ${kept.length} of ${data.length} entries would be kept`);

// %% [markdown]
// The instructions pair up most: the dataset words many tasks the same way ("Edit the following sentence for
// grammar.") and varies the input, so a shared instruction is expected, and the book's tool never removes an
// entry for it. For `input` and `output` it removes the second entry of each pair. Before doing that, read the
// pairs: a similar text is not always a repeated example.

// %% tags=["near-duplicate-examples"]
const sameInputs = findNearDuplicates(data, "input").filter((p) => p.similarity > 0.9999);
const closestOutputs = findNearDuplicates(data, "output").sort((a, b) => b.similarity - a.similarity)[0];
const examples = [
  ["The same task on the same input", sameInputs.find((p) => p.first.instruction === p.second.instruction)!],
  ["The same input, another task", sameInputs.find((p) => p.first.instruction !== p.second.instruction)!],
  ["The two most similar outputs", closestOutputs],
] as const;
for (const [what, p] of examples) {
  console.log(`${what} (similarity ${formatSimilarity(p.similarity)}), entries ${p.firstIndex} and ${p.secondIndex}:`);
  console.log(p.first, "\n", p.second, "\n");
}

// %% [markdown]
// The first pair is a real repeat: one task on one input, answered twice in different words; dropping the
// second loses nothing. The other two are different examples: one sentence asked about in two ways, and two
// answers to different questions, written with nearly the same characters. Character n-grams measure how texts
// are *written*, not what they *mean*, so the threshold is a starting point for reading, not a verdict. (The
// book's script also reads the entries by their position among the non-empty texts of a field, so in `input`,
// where most texts are empty, it prints and removes the wrong entries; `findNearDuplicates` keeps each text with
// its own entry.) The course trains on all 1,100 entries, as the book does.

// %% [markdown]
// ## What comes next
//
// The model does not read text but token ids, and it learns from *batches* of entries at once. Entries have
// different lengths, so a batch has to be padded into a rectangle — and the padding must not teach the model
// anything. Notebook **02** builds the function that does this, the *collate* function, in three drafts, and
// shows how the loss is told to skip padding with the special target value -100.
