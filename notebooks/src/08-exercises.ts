// %% [markdown]
// # 08 · Exercises 7.1–7.3: the Phi-3 prompt, masking the instruction, and the 52k Alpaca data
//
// *The exercises of chapter 7 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Each exercise changes one thing in the pipeline of notebooks 01–06, and each is an option of the library and
// of `npm run finetune`:
//
// | exercise | what changes | library | command line |
// |---|---|---|---|
// | 7.1 | the prompt format: Phi-3's instead of Alpaca's | `formatInput(entry, "phi3")`, `InstructionDataset(…, { promptStyle })` | `--prompt-style phi3` |
// | 7.2 | the instruction and input masked out of the targets | `InstructionDataset(…, { maskInstructions: true })` | `--mask-instructions` |
// | 7.3 | another data set: Stanford's 52,002-entry Alpaca data | `resolveDataSource(url)` | `--data URL --batch-size 4 --allowed-max-length 512` |
//
// This notebook shows what each change does to the data, exactly, and quotes what the book's solutions found
// when they trained GPT-2 medium that way and scored it with the judge of notebook 07. It trains nothing
// itself: `npm run finetune -- --prompt-style phi3 --mask-instructions` runs both exercises end to end.

// %%
import * as fs from "node:fs";
import * as http from "node:http";
import * as os from "node:os";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import {
  initEngine, loadInstructionData, formatInput, formatTrainingText, encodeText, decodeTokens, InstructionDataset,
  DataLoader, extractResponse, splitData, resolveDataSource, ALPACA_52K_URL, runProgress, showTable,
} from "@course/lib";

await initEngine();
const data = await loadInstructionData();

// %% [markdown]
// ## Exercise 7.1: the Phi-3 prompt format
//
// Microsoft's Phi-3 models were fine-tuned with a much shorter template than Alpaca's: a `<|user|>` tag, the
// instruction (and the input on the next line), then `<|assistant|>:` and the answer. The book's solution formats
// entries 50 and 999 like this:

// %% tags=["phi3-format"]
for (const i of [50, 999]) {
  console.log(formatTrainingText(data[i], "phi3"));
  console.log("---");
}

// %% [markdown]
// To GPT-2's tokenizer, `<|user|>` and `<|assistant|>` are ordinary text, a few tokens each; only `<|endoftext|>`
// is special. What the format buys is length: every training text loses Alpaca's fixed preamble and headers.

// %% tags=["phi3-lengths"]
const tokenCount = (style: "alpaca" | "phi3") => data.map((e) => encodeText(formatTrainingText(e, style)).length);
const alpacaTokens = tokenCount("alpaca");
const phi3Tokens = tokenCount("phi3");
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
console.log(`tokens per training text, mean over the 1,100 entries: Alpaca ${(sum(alpacaTokens) / data.length).toFixed(1)}, Phi-3 ${(sum(phi3Tokens) / data.length).toFixed(1)}`);
console.log(`Phi-3 texts are ${(100 * (1 - sum(phi3Tokens) / sum(alpacaTokens))).toFixed(0)}% shorter in all`);

// %% [markdown]
// Shorter inputs train faster: the book's solution fine-tuned GPT-2 medium in 1.50 minutes with the Phi-3
// format against 1.80 with Alpaca's on an NVIDIA L4 GPU, about 17% faster. The answer is extracted the same way
// as before, with the Phi-3 header removed instead of `### Response:` (`generateResponse(…, { promptStyle:
// "phi3" })` does it, and `npm run finetune -- --prompt-style phi3` uses it for the test responses):

// %% tags=["phi3-extract"]
const prompt = formatInput(data[50], "phi3");
const generated = `${prompt}\n<|assistant|>:\nThe correct spelling is 'Occasion'.`; // what a fine-tuned model might write
console.log(JSON.stringify(extractResponse(generated, prompt, "phi3")));

// %% [markdown]
// **What the book found.** Scored by Llama 3 8B, the Phi-3 model averaged 48.87, "in the same ballpark" as the
// Alpaca one (the chapter: 50.32): the format changes the cost, not the quality.
//
// ## Exercise 7.2: masking the instruction and input
//
// The chapter's loss covers the whole training text: the model learns to predict the instruction's tokens as
// well as the response's. The exercise scores the response alone. The data set keeps each entry's prompt length
// in tokens (`formatInput` tokenized alone), and collate writes -100 over the targets before it, the book's
// `targets[:instruction_length-1] = -100` (target *t* is the token at position *t*+1, so exactly the targets that
// are prompt tokens are masked). The book's solution checks it on three samples; the second row of the batch:

// %% tags=["mask-batch"]
const SAMPLE = [
  { instruction: "What is an antonym of 'complicated'?", input: "", output: "An antonym of 'complicated' is 'simple'." },
  { instruction: "Sort the following list in alphabetical order.", input: "Zebra, Elephant, Crocodile", output: "Crocodile, Elephant, Zebra" },
  { instruction: "Arrange the given numbers in descending order.", input: "5, 12, 8, 3, 15", output: "15, 12, 8, 5, 3." },
];
const masked = new InstructionDataset(SAMPLE, { maskInstructions: true });
const { inputs, targets } = new DataLoader(masked, { batchSize: 3 }).batches(0).next().value!;
console.log(`inputs ${JSON.stringify(inputs.shape)}, targets ${JSON.stringify(targets.shape)}; prompt lengths ${JSON.stringify(masked.promptLengths)}`);
const row = (t: typeof inputs) => (t.arraySync() as number[][])[1];
console.log(`inputs[1]:  ${JSON.stringify(row(inputs))}`);
console.log(`targets[1]: ${JSON.stringify(row(targets))}`);

// %% [markdown]
// Decoded, the inputs are the whole text; the targets that are not -100 are only the response header, the
// response and its end-of-text:

// %% tags=["mask-decoded"]
console.log(decodeTokens(row(inputs)));
console.log("--- the scored targets:");
console.log(decodeTokens(row(targets).filter((t) => t !== -100)));
inputs.dispose();
targets.dispose();

// %% [markdown]
// **What the book found.** Trained this way, GPT-2 medium scored 47.73 against the chapter's 50.32: slightly
// worse, as the paper the book cites, "Instruction Tuning With Loss Over Instructions" (Shi et al., 2024), also
// observed; learning to predict the instructions seems to help the model, at least with little data and short
// answers. Note that its losses are not comparable with the chapter's: they average over the response tokens
// only (the book's masked run starts at a training loss of 2.28 where the chapter's starts at 3.8).
//
// ## Exercise 7.3: the 52k Alpaca data set
//
// The chapter's 1,100 entries are a sample; the data set they imitate, Stanford's Alpaca, has 52,002, in the same
// JSON format. `--data` takes any such file, or an address, which is downloaded once with a progress bar into
// `.cache/data/`, with its SHA-256 checksum beside it: a later run uses the cached copy only if it still has that
// checksum, and `--data-sha256` pins the value a download must have. The book's split of the 52,002 entries:

// %% tags=["alpaca-split"]
const split52k = splitData(Array.from({ length: 52002 }, (_, i) => i));
console.log(`${ALPACA_52K_URL}: 52,002 entries -> train ${split52k.train.length}, validation ${split52k.val.length}, test ${split52k.test.length}`);

// %% [markdown]
// The download itself, shown offline: a server on this machine serves the chapter's own data file, and
// `resolveDataSource` fetches it as it would fetch the Alpaca file. Its checksum must be the one recorded in
// `data/NOTICE` when the file was copied from the book's repository.

// %% tags=["download"]
const server = http.createServer((_req, res) => {
  const body = fs.readFileSync(path.resolve("..", "data", "instruction-data.json"));
  res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(body.length) });
  res.end(body);
});
await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/instruction-data.json`;
const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "course-data-"));
const progress = runProgress("download");
const file = await resolveDataSource(url, {
  cacheDir,
  log: (line) => console.log(line.replace(url, "<local server>/instruction-data.json").replace(cacheDir, "<cache>")),
  onProgress: (received, total) => total && progress.update(received, total),
});
progress.done();
server.close();
const recorded = /sha256: ([0-9a-f]{64})/.exec(fs.readFileSync(path.resolve("..", "data", "NOTICE"), "utf8"))?.[1];
const got = fs.readFileSync(`${file}.sha256`, "utf8").trim();
console.log(`checksum as in data/NOTICE: ${got === recorded}; entries: ${(await loadInstructionData(file)).length}`);
fs.rmSync(cacheDir, { recursive: true, force: true });

// %% [markdown]
// The Alpaca entries are also longer than the chapter's, so the book's solution halves the batch size to 4 and
// cuts every sequence to 512 tokens (`allowed_max_length`) to fit in a GPU's memory:
//
// ```sh
// npm run finetune -- --data https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/alpaca_data.json \
//   --batch-size 4 --allowed-max-length 512
// ```
//
// **What the book found.** 44,201 training entries make 11,050 steps per epoch at batch size 4; the two epochs
// took 196 minutes on the book's GPU, and the 5,200 test responses almost three hours more. Llama 3 scored
// 5,188 of them, averaging 48.16: a little below the chapter's score, on a test set the book describes as more
// varied and partly harder. On this course's CPUs that is a job of days, not minutes; it is a GPU exercise.
//
// ## All three at once
//
// The options combine. From the command line, exercises 7.1 and 7.2 together (offline this trains the small model
// of the README, in a few minutes):
//
// ```sh
// npm run finetune -- --prompt-style phi3 --mask-instructions
// npm run judge -- --responses runs/<the run folder>/instruction-data-with-response.json
// ```
//
// Score the runs with the same judge on the same machine, and compare: that is the experiment the book's
// exercise solutions report.
