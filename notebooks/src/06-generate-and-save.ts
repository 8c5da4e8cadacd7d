// %% [markdown]
// # 06 · Responses for the test set, and saving the model
//
// *Chapter 7, section 7.7 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Notebook 05 fine-tuned a model and saved it in `runs/notebook/model/`. This notebook uses it the way the book
// does after training:
//
// 1. it lets the model answer the instructions of the test set — 110 entries it has never seen — with a
//    progress bar while it generates;
// 2. puts the answers next to the expected outputs;
// 3. saves them in the book's `instruction-data-with-response.json`: the test entries plus a
//    `model_response` field, the input of the book's section 7.8, where a larger model scores the answers;
// 4. saves the model, loads it back, and checks that the reloaded model computes the same logits.
//
// ## Settings
//
// The book generates up to 256 new tokens for each of the 110 test entries. `generateResponse` keeps each
// layer's keys and values between tokens (a KV cache, `KVCache` in lib/model/kv-cache.ts, passed through the
// model's own forward pass as `model.forward(ids, { cache })`, and checked token for token against the plain
// loop of notebook 04), so a new token costs one position's work instead of a pass over the whole
// text. `generateResponses` does the same for many entries at once: 8 prompts of different lengths share one
// forward pass per token (left-padded, each with its own positions, each stopping at its own `<|endoftext|>`),
// and gives exactly the responses `generateResponse` gives one entry at a time (test/generate-batch.test.ts).
// The 110 answers of the tiny model take seconds; pretrained GPT-2 medium's take minutes on a CPU. The
// **quick** setting (environment variable `COURSE_QUICK=1`, used by the tests and CI) answers only the first 5
// entries with at most 64 new tokens. **The outputs saved in this notebook come from the full setting (all
// 110 entries, up to 256 tokens) on the model notebook 05 trained offline: the tiny model from random
// weights, 2 epochs on all 935 training entries.**

// %% tags=["settings"]
const QUICK = process.env.COURSE_QUICK === "1";
const N_TEST: number | undefined = QUICK ? 5 : undefined; // undefined: the whole test set
const MAX_NEW_TOKENS = QUICK ? 64 : 256;
console.log(`test entries: ${N_TEST ?? "all"}; at most ${MAX_NEW_TOKENS} new tokens each${QUICK ? " (quick setting, COURSE_QUICK=1)" : ""}`);

// %%
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import {
  initEngine, loadInstructionData, splitData, formatInput, chooseModel, generateResponse, generateResponses, progressDisplay,
  showTable, saveGPT2Directory, loadGPT2Directory, writeFileAtomic, writeAll, textToTokenIds, InstructionEntry,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## The fine-tuned model
//
// `chooseModel` with `weightsDir` loads a Hugging Face GPT-2 folder, here the one notebook 05 wrote. Its
// `run.json` says how that model was trained.

// %% tags=["load"]
const RUN_DIR = path.resolve("..", "runs", "notebook");
if (!fs.existsSync(path.join(RUN_DIR, "model", "model.safetensors"))) {
  throw new Error(`no fine-tuned model in ${RUN_DIR}/model: run notebook 05 first`);
}
const run = JSON.parse(fs.readFileSync(path.join(RUN_DIR, "run.json"), "utf8"));
const { model } = await chooseModel({ weightsDir: path.join(RUN_DIR, "model") });
console.log(
  `fine-tuned ${run.model} (${run.pretrained ? "from pretrained weights" : "from RANDOM weights, not GPT-2"}), ` +
    `${run.epochs} epochs on ${run.trainLimit ?? "all"} training entries${run.quick ? " (quick setting)" : ""}`,
);

// %% [markdown]
// ## Answering the test set
//
// As in notebook 04 and in the book: the prompt is `formatInput(entry)`, decoding is greedy and stops at
// `<|endoftext|>`, and the response is the generated text after the prompt, with the `### Response:` header the
// model writes removed and whitespace trimmed. That is `generateResponse` for one entry; `generateResponses`
// answers a list of them in batches, with the same results.

// %% tags=["responses"]
const { test } = splitData(await loadInstructionData());
const entries = N_TEST === undefined ? test : test.slice(0, N_TEST);
const bar = progressDisplay(entries.length, "responses");
const answers = await generateResponses(model, entries, { maxNewTokens: MAX_NEW_TOKENS, onProgress: (n) => bar.tick(n) });
bar.done();
const results: (InstructionEntry & { model_response: string })[] = entries.map((entry, i) => ({ ...entry, model_response: answers[i] }));
// the batched answers are generateResponse's, one entry at a time: check the first
console.log(`first answer as generateResponse gives it alone: ${(await generateResponse(model, entries[0], { maxNewTokens: MAX_NEW_TOKENS })) === answers[0]}`);
const empty = results.filter((r) => r.model_response === "").length;
console.log(`${results.length} responses; ${empty} empty`);

// %% [markdown]
// The book prints the first three like this:

// %% tags=["first-three"]
for (const r of results.slice(0, 3)) {
  console.log(formatInput(r));
  console.log(`\nCorrect response:\n>> ${r.output}`);
  console.log(`\nModel response:\n>> ${r.model_response}`);
  console.log("-------------------------------------");
}

// %% [markdown]
// And the first 20 side by side, numbered as test entries from 1 (all of them are in the file saved below).
// Long answers are cut at 200 characters, and a "word" with no space in it (this model sometimes writes a row
// of commas) wraps inside its cell instead of pushing the table past the page:

// %% tags=["table"]
const TABLE_ROWS = 20;
showTable(
  results.map((r) => ({ instruction: r.instruction, input: r.input, expected: r.output, "model response": r.model_response })),
  {
    caption: `Test set: expected output and the fine-tuned model's response (the first ${Math.min(TABLE_ROWS, results.length)} of ${results.length})`,
    maxRows: TABLE_ROWS,
    maxCellChars: 200,
    index: "from1",
  },
);

// %% [markdown]
// **What the saved outputs show.** The tiny model answers every one of the 110 instructions (none empty) and
// stops by itself, with an end-of-text marker, but its answers are template-shaped guesses: "The book." for the
// simile, "The boiling point of meters." for the cloud type, and another "The boiling point of …" for the author
// of *Pride and Prejudice*. It has learned what an answer looks like in this data set (short, a sentence,
// often starting with "The") from 2 epochs over 935 examples, starting from nothing; knowing answers takes the
// pretraining it does not have. This is the offline stand-in, not the book's result. With pretrained GPT-2
// medium, the book's first three answers are: "The car is as fast as a bullet." where the expected simile is
// "as fast as lightning" (right, in other words); "cumulus" where the expected cloud type is cumulonimbus
// (related, but wrong); and "Jane Austen" for the author of *Pride and Prejudice* (right).
//
// ## Saving the responses
//
// The book's file: the test entries, each with its `model_response`, as a JSON array. It is written
// atomically (to a temporary file, then renamed), so a run stopped halfway never leaves half a file.

// %% tags=["save-responses"]
const RESPONSES_FILE = path.join(RUN_DIR, "instruction-data-with-response.json");
writeFileAtomic(RESPONSES_FILE, (fd) => writeAll(fd, JSON.stringify(results, null, 4) + "\n"));
const reread = JSON.parse(fs.readFileSync(RESPONSES_FILE, "utf8")) as typeof results;
console.log(`saved ${path.relative(path.resolve(".."), RESPONSES_FILE)}: ${reread.length} entries`);
console.log(`fields of each entry: ${Object.keys(reread[0]).join(", ")}`);

// %% [markdown]
// ## Saving the model, and loading it back
//
// The book saves the fine-tuned weights with `torch.save(model.state_dict(), "gpt2-medium355M-sft.pth")`.
// Here the model is saved as a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`), the layout the
// pretrained weights came in: it loads back here, in the command line
// (`npm run generate -- --weights runs/notebook/<name>-sft --instruction "..."`), and in Python with
// `transformers.GPT2LMHeadModel.from_pretrained`. Once fine-tuned, the output head is no longer the token
// embedding, so the file keeps both (`lm_head.weight` next to `wte`).
//
// A saved model is only useful if it is the same model: the check is that the reloaded one computes the same
// logits, to the last bit, on the first test prompt.

// %% tags=["reload"]
const SFT_DIR = path.join(RUN_DIR, `${run.model.replace(/[^A-Za-z0-9.-]+/g, "")}-sft`);
await saveGPT2Directory(model, SFT_DIR);
console.log(`saved ${path.relative(path.resolve(".."), SFT_DIR)}/: ${fs.readdirSync(SFT_DIR).sort().join(", ")}`);
const reloaded = await loadGPT2Directory(SFT_DIR);
const ids = textToTokenIds(formatInput(test[0])); // (1, T)
const before = model.forward(ids); // (1, T, V)
const after = reloaded.forward(ids); // (1, T, V)
const diff = tf.max(tf.abs(tf.sub(before, after))); // a scalar, read with await data(): that works on every engine, GPUs too
const maxDiff = (await diff.data())[0];
diff.dispose();
console.log(`logits of the first test prompt: shape [${before.shape}], max |saved - reloaded| = ${maxDiff}`);
console.log(`the reloaded model is the same: ${maxDiff === 0}`);
tf.dispose([ids, before, after]);
reloaded.dispose();
model.dispose();

// %% [markdown]
// ## What comes next
//
// Notebook 07 is section 7.8: it scores each response in `instruction-data-with-response.json` from 0 to 100
// by asking a larger model (Llama 3, through Ollama) to compare it with the expected output; the file this
// notebook wrote is exactly its input. Notebook 08 runs the chapter's exercises.
//
// From the command line, `npm run finetune` does notebooks 04 to 06 in one go (choose the model, fine-tune,
// plot, answer the test set, save everything into a run folder), and `npm run generate` asks a saved model one
// instruction of your own.
