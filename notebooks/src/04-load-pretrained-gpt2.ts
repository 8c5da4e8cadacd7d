// %% [markdown]
// # 04 · Loading pretrained GPT-2
//
// *Chapter 7, section 7.5 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// The data is ready (notebooks 01–03). Now the model. The book fine-tunes **GPT-2 medium** (355 million
// parameters), starting from the weights OpenAI released, because instruction fine-tuning is cheap only when
// the model already knows the language: the fine-tuning teaches it a *format* (answer the instruction, then
// stop), not English. This notebook:
//
// 1. chooses the model — pretrained GPT-2 medium when its weights are on this machine or can be downloaded,
//    otherwise a small model from random weights, with a banner saying so;
// 2. prints its parameter counts, as the book does;
// 3. computes its loss on a few training and validation batches before any fine-tuning;
// 4. lets it answer the first validation instruction, the book's passive-voice example, *before* fine-tuning.

// %%
import * as tf from "@tensorflow/tfjs";
import {
  initEngine, loadInstructionData, splitData, formatInput, chooseModel, printParamSummary, MODEL_CONFIGS,
  countParams, showTable, InstructionDataset, DataLoader, calcLossLoader, generate, textToTokenIds,
  tokenIdsToText, END_OF_TEXT, BOOK_BATCH_SIZE, BOOK_SEED, BOOK_EVAL_ITER,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## Choosing the model
//
// The book's section 7.5 sets `CHOOSE_MODEL = "gpt2-medium (355M)"` and downloads OpenAI's checkpoint. The
// library's `chooseModel` does the same with `model: "auto"`, taking the weights from Hugging Face's copy
// (`openai-community/gpt2-medium`, a `config.json` and a 1.5 GB `model.safetensors`) and caching them in
// `.cache/gpt2/`:
//
// - weights in the cache: loaded, no network needed;
// - not cached, but huggingface.co answers: downloaded once (with progress lines), then loaded;
// - neither (no network, or `COURSE_OFFLINE=1` in the environment): the course's small **"tiny"** config
//   (2 blocks, 128-wide, 13 million parameters) with **random** weights, and a banner that says so.
//
// Deciding takes a few seconds at most: one request to the Hub, which gets three seconds to answer.
//
// **Which one did this run get?** The saved outputs of this notebook come from an offline run: the banner
// below is real, and everything after it is the random tiny model, not GPT-2. Run the notebook on a machine
// with internet access (or with the two files placed by hand where the banner says) to see the book's model.

// %% tags=["choose"]
const chosen = await chooseModel({ model: "auto" });
const model = chosen.model;
console.log(`model: ${chosen.name}, ${chosen.pretrained ? "pretrained" : "NOT pretrained"} (${chosen.source})`);

// %% [markdown]
// ## How big is it?
//
// The book's parameter count. GPT-2's output head is the token embedding matrix, reused ("weight tying"); the
// book's model, like this one, keeps a separate head, so it counts both, and then the total without the head.
// Loading GPT-2's weights fills that head with a copy of the token embedding (the checkpoint has no head of its
// own), so a pretrained model starts with the two equal and fine-tuning moves them apart. The random tiny model
// printed below draws its head at random like every other weight: for it, the two tables were never equal.

// %% tags=["params"]
printParamSummary(model);

// %% [markdown]
// For comparison, the four GPT-2 sizes (counted from their configs, without building them) and the tiny
// config. Most of the tiny model's parameters are its two 50,257-row tables, the token embedding and the
// output head: it keeps GPT-2's tokenizer, so the data pipeline of notebooks 01–03 is unchanged.
//
// The gpt2-small row is more than the 163,009,536 that the book prints for its 124M model in chapter 4. Both
// are right (the line under the table counts the difference): chapter 4's `GPT_CONFIG_124M` sets `qkv_bias: False`, while chapter 7 (like OpenAI's
// checkpoints, and every config here) uses `qkv_bias: True`, which adds a bias vector to the query, key and
// value projections of every block: 3 × 768 numbers in each of 12 blocks, 3 × 768 × 12 = 27,648.

// %% tags=["sizes"]
showTable(
  Object.entries(MODEL_CONFIGS).map(([name, cfg]) => ({
    model: name,
    layers: cfg.nLayers,
    heads: cfg.nHeads,
    "embedding width": cfg.embDim,
    parameters: countParams(cfg).toLocaleString("en-US"),
  })),
  { caption: "GPT-2 sizes (the book's model_configs) and the offline config", index: "hide" },
);
const small = MODEL_CONFIGS["gpt2-small (124M)"];
const smallNoBias = countParams({ ...small, qkvBias: false });
console.log(`gpt2-small with qkv_bias false (chapter 4's GPT_CONFIG_124M): ${smallNoBias.toLocaleString("en-US")} parameters; the qkv bias adds ${(countParams(small) - smallNoBias).toLocaleString("en-US")}`);

// %% [markdown]
// ## The loss before fine-tuning
//
// Before training, the book measures the loss on the training and validation loaders, to have a number to
// beat. The same here, on the first 5 batches of each (the book's `eval_iter`, `BOOK_EVAL_ITER`), with the
// loaders of notebook 03 and the masked cross-entropy of notebook 02.
//
// A useful reference: a model that knows nothing spreads its probability evenly over the 50,257 tokens, and
// its loss is ln 50257 ≈ 10.82. Pretrained GPT-2 medium starts far below that (the book reports a training
// loss of about 3.8); a random model sits right at it.

// %% tags=["initial-loss"]
const { train, val, test } = splitData(await loadInstructionData());
const collateOptions = { allowedMaxLength: model.cfg.contextLength };
const trainLoader = new DataLoader(new InstructionDataset(train), { batchSize: BOOK_BATCH_SIZE, shuffle: true, dropLast: true, seed: BOOK_SEED, collateOptions });
const valLoader = new DataLoader(new InstructionDataset(val), { batchSize: BOOK_BATCH_SIZE, collateOptions });
const trainLoss = await calcLossLoader(trainLoader.batches(0), model, BOOK_EVAL_ITER);
const valLoss = await calcLossLoader(valLoader.batches(0), model, BOOK_EVAL_ITER);
console.log(`Training loss: ${trainLoss.toFixed(3)}`);
console.log(`Validation loss: ${valLoss.toFixed(3)}`);
console.log(`ln(vocabulary size) = ln(${model.cfg.vocabSize}) = ${Math.log(model.cfg.vocabSize).toFixed(3)}`);

// %% [markdown]
// ## What does it answer before fine-tuning?
//
// The book's test: the first validation entry.

// %% tags=["val0"]
const entry = val[0];
console.log(entry);

// %% [markdown]
// As in the book, the prompt is `formatInput(entry)` alone: the instruction part of the Alpaca template,
// without `### Response:`. After fine-tuning, the model writes that header itself before its answer.

// %% tags=["prompt"]
const prompt = formatInput(entry);
console.log(prompt);

// %% [markdown]
// Then the book's generation call: greedy decoding (always the most likely next token), at most 35 new tokens,
// stopping early at `<|endoftext|>`. The response is what follows the prompt.

// %% tags=["untuned"]
const idx = textToTokenIds(prompt); // (1, T)
const out = await generate(model, idx, { maxNewTokens: 35, contextSize: model.cfg.contextLength, eosId: END_OF_TEXT }); // (1, T + n)
const generatedText = await tokenIdsToText(out);
const responseText = generatedText.slice(prompt.length).trim();
console.log(`${out.shape[1] - idx.shape[1]} new tokens:`);
console.log(responseText);
tf.dispose([idx, out]);

// %% [markdown]
// **With pretrained GPT-2 medium**, the book gets:
//
// ```
// The chef cooks the meal every day.
//
// ### Instruction:
//
// Convert the active sentence to passive: 'The chef cooks the
// ```
//
// That is after the book's code has removed a `### Response:` header from the start of the continuation: the
// model wrote one itself. (The cell above prints the continuation as it is, header or not.)
// It has picked up the *form* of the prompt — it writes a `### Response:` header — but it does not do the task:
// it repeats the input sentence unchanged and then starts a new instruction of its own. A pretrained model
// continues text that looks like the text it saw; nothing has taught it that an instruction is something to
// carry out, or that a response ends.
//
// **With the random tiny model** (the offline run saved in this notebook) there is not even that: with random
// weights every token is about as likely as any other (the loss above is ln 50257), and greedy decoding strings
// together 35 unrelated tokens — no header, no English, no end. Fine-tuning this model has to teach it
// English-looking answers and where to stop from the 935 training examples alone, a much harder job than
// GPT-2's (notebook 05 shows how far it gets).

// %%
model.dispose();

// %% [markdown]
// ## What comes next
//
// Notebook **05** fine-tunes this model on the 935 training entries with the book's training loop (AdamW,
// evaluation every 5 steps, a sample answer after each epoch), and plots the training and validation loss as
// they fall — and, if training goes on for too long, as the validation loss starts to climb again.
