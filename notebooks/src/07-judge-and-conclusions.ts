// %% [markdown]
// # 07 · Scoring the responses with an LLM judge, and the chapter's conclusions
//
// *Chapter 7, sections 7.8 and 7.9 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Notebook 06 saved the fine-tuned model's answers to the test instructions in
// `instruction-data-with-response.json`. How good are they? A loss says how well the model predicts the
// expected tokens, not whether an answer is right: "Rome is the capital of Italy." and "The capital of Italy is
// Rome." are equally right and very differently likely. The book's answer is to ask a much larger model, Llama 3
// with 8 billion parameters, served on the reader's own machine by [Ollama](https://ollama.com), to score each
// response from 0 to 100 against the expected output, and to average the scores. This notebook:
//
// 1. builds the question the judge is asked for one entry, and reads its answer the way the book does;
// 2. runs the judge on every response, when an Ollama server is there;
// 3. otherwise, and beside it, scores the responses with ROUGE-L, an automatic metric that needs no judge, and
//    shows what such a metric misses;
// 4. puts the book's scores next to ours, and ends the chapter: what it did, and what comes after it.
//
// **The outputs saved in this notebook come from a machine without Ollama: the judge cell says so and the
// scores shown are ROUGE-L, not the judge's.** The responses are those of notebook 06: the offline tiny model
// (random weights, 2 epochs on all 935 training entries), answering all 110 test entries.

// %% tags=["settings"]
import {
  judgePrompt, parseScore, judgeClient, judgeResponses, rougeL, rougeLRecords, summaryLines, showTable, runProgress,
  BOOK_JUDGE_MODEL, BOOK_JUDGE_OPTIONS, OLLAMA_DEFAULT_HOST, ResponseEntry, JudgeError,
} from "@course/lib";
import * as fs from "node:fs";
import * as path from "node:path";

// the judge: Ollama on this machine unless OLLAMA_HOST says otherwise, the book's Llama 3 8B
const HOST = process.env.OLLAMA_HOST || OLLAMA_DEFAULT_HOST;
const JUDGE_MODEL = process.env.COURSE_JUDGE_MODEL || BOOK_JUDGE_MODEL;
console.log(`judge: ${JUDGE_MODEL} on Ollama at ${HOST}; options ${JSON.stringify(BOOK_JUDGE_OPTIONS)}`);

// %% [markdown]
// ## The responses
//
// The file notebook 06 wrote: the test entries, each with the model's answer in `model_response`.

// %% tags=["load"]
const RUN_DIR = path.resolve("..", "runs", "notebook");
const RESPONSES_FILE = path.join(RUN_DIR, "instruction-data-with-response.json");
if (!fs.existsSync(RESPONSES_FILE)) throw new Error(`no ${RESPONSES_FILE}: run notebooks 05 and 06 first`);
const entries = JSON.parse(fs.readFileSync(RESPONSES_FILE, "utf8")) as ResponseEntry[];
const run = JSON.parse(fs.readFileSync(path.join(RUN_DIR, "run.json"), "utf8"));
console.log(`${entries.length} responses of ${run.model} (${run.pretrained ? "pretrained GPT-2, fine-tuned" : "from RANDOM weights, not GPT-2"})`);

// %% [markdown]
// ## The question the judge is asked
//
// For each entry the judge gets the instruction (and its input, when there is one), the reference answer from
// the data set, and the model's response, and is asked for a score from 0 to 100, **as an integer and nothing
// else**. The book's first try leaves that last request out, and Llama 3 answers with paragraphs of reasoning
// around its score; asking for the integer alone makes the answer something a program can read. The wording
// below is this course's own; `judgePrompt` builds it.

// %% tags=["prompt"]
console.log(judgePrompt(entries[0], entries[0].model_response as string));

// %% [markdown]
// The answer counts only if all of it, spaces aside, is one integer from 0 to 100, the book's `int(score)`.
// Anything else leaves the entry **unscored**: it is not counted as 0, it drops out of the average, and the book
// reports how many entries were scored ("Number of scores: 110 of 110"). An empty response is not sent to the
// judge at all and scores 0, as in the book's script.

// %% tags=["parse"]
for (const answer of ["85", " 37\n", "Score: 85", "I would rate this response 90/100.", "100", "120"]) {
  const parsed = parseScore(answer);
  console.log(`${JSON.stringify(answer).padEnd(40)} -> ${parsed.score === null ? `unscored (${parsed.reason})` : parsed.score}`);
}

// %% [markdown]
// ## Why scores vary, and the settings that keep them still
//
// A language model samples its next token, so the same question can get a different score on each run. Three
// options make the judge repeatable, and the book's code sends them with every request: `seed: 123` fixes the
// sampling, `temperature: 0` always picks the most likely token, and `num_ctx: 2048` fixes the context window
// (Ollama's default has changed between versions, and a prompt cut to fit a smaller window changes the answer).
// Even so, the book warns that Ollama was not fully deterministic across operating systems when it was written:
// another machine, another Ollama version or another build of the model (a different quantization) can move
// the scores by a point or two. Compare models with the same judge on the same machine, and where it matters,
// run the scoring more than once and average.
//
// ## The judge
//
// `judgeResponses` asks the judge about every entry, saves each score as it comes (a run stopped halfway keeps
// what it scored, and the next continues from there), and retries an answer whose stream was cut off. It first
// checks that the server is there and has the model, and says how to fix it when not. To run it yourself:
// install Ollama, start it with `ollama serve` (or the Ollama app), `ollama pull llama3` (the book says the
// 8-billion-parameter model needs 16 GB of memory; `phi3`, 3.8 billion, needs 8 GB: set `COURSE_JUDGE_MODEL`),
// and run this notebook again, or from the command line: `npm run judge -- --responses runs/notebook/instruction-data-with-response.json`.

// %% tags=["judge"]
const client = judgeClient({ api: "ollama", host: HOST, model: JUDGE_MODEL, seed: BOOK_JUDGE_OPTIONS.seed, temperature: BOOK_JUDGE_OPTIONS.temperature, numCtx: BOOK_JUDGE_OPTIONS.num_ctx, stream: true });
let judged = false;
try {
  await client.ready();
  const progress = runProgress("Scoring entries");
  const result = await judgeResponses(entries, client, {
    responsesFile: RESPONSES_FILE, field: "model_response", out: path.join(RUN_DIR, "judge-scores.json"),
    log: progress.log,
    onScore: (done) => progress.update(done, entries.length),
  });
  progress.done();
  for (const line of summaryLines(result.records.values(), entries.length)) console.log(line);
  judged = true;
} catch (err) {
  if (!(err instanceof JudgeError)) throw err;
  console.log(`no judge here: ${err.message}`);
  console.log("So no LLM-judge scores in this run: the next cells score the responses with ROUGE-L instead.");
}

// %% [markdown]
// ## Without a judge: ROUGE-L
//
// ROUGE-L compares the words of a response with those of the reference answer: the longest sequence of words
// that appear in both, in the same order (not necessarily side by side). Divided by the response's length it is
// a precision, by the reference's a recall; their harmonic mean, the F1, is the score, here times 100 to sit on
// the judge's scale. It needs no other model and gives the same number everywhere. **It is not the judge's score
// and the two are not comparable**: the judge rates correctness, ROUGE-L counts shared words.

// %% tags=["metric"]
const metric = rougeLRecords(entries, "model_response");
console.log("ROUGE-L F1 of model_response against the reference outputs, 0-100 (an automatic metric, NOT the judge's score)");
for (const line of summaryLines(metric.values(), entries.length, "Average ROUGE-L F1")) console.log(line);
showTable(
  entries.slice(0, 10).map((e, i) => ({ instruction: e.instruction, expected: e.output, "model response": e.model_response, "ROUGE-L F1": (metric.get(i)?.score ?? 0).toFixed(1) })),
  { caption: "The first 10 test entries and their ROUGE-L F1 (0-100)" },
);

// %% [markdown]
// ## What the metric misses
//
// The book's fine-tuned GPT-2 medium gave these three answers to the first three test entries. A reader sees at
// once that the first is a fine simile, the second names the wrong cloud, and the third is exactly right. The
// book shows the judge seeing the same: it rates the simile good but not outstanding, the cloud lower for
// being inaccurate, and the Jane Austen answer perfect. ROUGE-L gets it backwards:

// %% tags=["metric-misses"]
const BOOK_EXAMPLES = [
  { expected: "The car is as fast as lightning.", response: "The car is as fast as a bullet." },
  { expected: "The type of cloud typically associated with thunderstorms is cumulonimbus.", response: "The type of cloud typically associated with thunderstorms is a cumulus." },
  { expected: "Jane Austen.", response: "The author of 'Pride and Prejudice' is Jane Austen." },
];
for (const { expected, response } of BOOK_EXAMPLES) {
  const r = rougeL(response, expected);
  console.log(`ROUGE-L F1 ${r.f1.toFixed(3)} (precision ${r.precision.toFixed(3)}, recall ${r.recall.toFixed(3)})  ${JSON.stringify(response)} for ${JSON.stringify(expected)}`);
}

// %% [markdown]
// The wrong cloud type scores highest (0.857), because the answer repeats the question's words around one
// wrong word; the right author scores lowest (0.364), because the answer is a full sentence where the reference
// is two words. Word overlap also misses paraphrases and synonyms, numbers written another way, and answers that
// are fluent and wrong. It is still useful for what it is: cheap, repeatable, and a sign that something moved
// between two runs. On the tiny offline model, whose answers have the shape of answers but not the content (see
// notebook 06), what ROUGE-L there is comes mostly from words like "the": in the saved run, "The book." gets 22
// out of 100 as a simile for the fast car, for that one shared word.
//
// ## The book's scores
//
// With Llama 3 8B as the judge (numbers from the book and its exercise solutions, each from one run):
//
// | fine-tuned model | average score | scored |
// |---|---:|---:|
// | GPT-2 medium, the chapter's settings | 50.32 | 110 of 110 |
// | ... with the Phi-3 prompt format (exercise 7.1) | 48.87 | 110 of 110 |
// | ... with the instruction masked in the targets (exercise 7.2) | 47.73 | 110 of 110 |
// | ... on the 52k Alpaca data set, its own 5,200 test entries (exercise 7.3) | 48.16 | 5,188 of 5,200 |
// | ... with LoRA (exercise 7.4) | 50.23 | 110 of 110 |
//
// For scale, the book reports that the same judge gives 58.51 to the Llama 3 8B base model and 82.6 to
// Llama 3 8B Instruct. The tiny model trained here from random weights would score near the bottom of the scale:
// it never learned any facts. To compare, fine-tune pretrained GPT-2 (notebook 05 does, with internet access) and
// run the judge on its responses.
//
// ## Conclusions (section 7.9)
//
// The chapter, and this course, went through the whole of supervised instruction fine-tuning:
//
// 1. a data set of instruction-response pairs, formatted with a prompt template (notebook 01);
// 2. batches padded per batch, with the padding masked out of the loss and one end-of-text kept as a target
//    (02, 03);
// 3. a pretrained GPT-2 (04), fine-tuned with AdamW and the cross-entropy over the response tokens (05);
// 4. answers to held-out instructions, saved with the model (06);
// 5. an evaluation of those answers by a larger model (this notebook).
//
// The book lists the levers for a better score: tune the hyperparameters (learning rate, batch size, epochs),
// use a larger and more varied data set (exercise 7.3), try other prompt formats (exercise 7.1), and start from a
// larger pretrained model. Notebook 08 runs the exercises.
//
// ## What comes next
//
// Instruction fine-tuning teaches a model to follow instructions by imitating reference answers. The next step in
// building assistants is **preference tuning**: showing the model pairs of answers to the same instruction, one
// preferred over the other, and training it to favour the preferred kind, so that it learns what makes an answer
// better (more helpful, more accurate, safer), not only what one good answer looks like. The classic recipe is
// RLHF (a reward model trained on human preferences, then reinforcement learning against it); Direct Preference
// Optimization (DPO) reaches a similar result with a loss computed directly on the preference pairs, no reward
// model needed, and the book's bonus material implements it for this very model. Parameter-efficient
// fine-tuning (LoRA, the book's appendix E and exercise 7.4) makes both affordable on one GPU. And, as the book
// ends, the field moves fast: follow its papers and open models, and try the newest methods on the small model
// you now understand end to end.
