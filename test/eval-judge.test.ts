// Section 7.8's judge, end to end: `npm run judge` spawned as a user runs it, against a stand-in
// server on 127.0.0.1 that speaks Ollama's documented protocol (test/helpers/stand-in-judge.ts).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { judgePrompt, parseScore } from "../lib/eval/judge-prompt";
import { closedPort, startStandIn, ChatRequest } from "./helpers/stand-in-judge";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "judge-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Spawn the judge asynchronously: the stand-in server answers from this very process. */
function judge(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [path.join(ROOT, "lib", "cli", "judge.ts"), "--retry-delay-ms", "0", ...args], {
      cwd: ROOT,
      env: { ...process.env, OLLAMA_HOST: "", ...env },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

const ENTRIES = [
  { instruction: "Rewrite the sentence using a simile.", input: "The car is very fast.", output: "The car is as fast as lightning.", model_response: "The car is as fast as a bullet." },
  { instruction: "What type of cloud is typically associated with thunderstorms?", input: "", output: "The type of cloud typically associated with thunderstorms is cumulonimbus.", model_response: "The type of cloud typically associated with thunderstorms is a cumulus." },
  { instruction: "Name the author of 'Pride and Prejudice'.", input: "", output: "Jane Austen.", model_response: "The author of 'Pride and Prejudice' is Jane Austen." },
  { instruction: "What is the capital of Italy?", input: "", output: "The capital of Italy is Rome.", model_response: "Rome is the capital of Italy." },
  { instruction: "Convert 45 kilometers to meters.", input: "", output: "45 kilometers is 45000 meters.", model_response: "45 kilometers is 4500 meters." },
];
/** What the stand-in judge answers for each response: integers, with blanks around one, and one sentence (unscored). */
const ANSWERS: Record<string, string> = {
  "The car is as fast as a bullet.": "85",
  "The type of cloud typically associated with thunderstorms is a cumulus.": " 37\n",
  "The author of 'Pride and Prejudice' is Jane Austen.": "100",
  "Rome is the capital of Italy.": "I would give this response a score of 95.",
  "45 kilometers is 4500 meters.": "12",
};
const responseOf = (req: ChatRequest) => ENTRIES.find((e) => req.body.messages[0].content === judgePrompt(e, e.model_response))?.model_response;
const answerFor = (req: ChatRequest) => ANSWERS[responseOf(req) ?? ""] ?? "no such entry";

const responsesFile = path.join(tmp, "instruction-data-with-response.json");
fs.writeFileSync(responsesFile, JSON.stringify(ENTRIES, null, 4));

/** The exact mean of the integers the server answered (what the judge must print). */
function expectedAverage(answers: string[]): { n: number; mean: string } {
  const ints = answers.map((a) => a.trim()).filter((a) => /^\d+$/.test(a)).map(Number);
  return { n: ints.length, mean: (ints.reduce((a, b) => a + b, 0) / ints.length).toFixed(2) };
}

test("the prompt for an entry with an input, and for one without, word for word", () => {
  assert.equal(
    judgePrompt(ENTRIES[0], ENTRIES[0].model_response),
    "You are grading the response of a language model to an instruction, against a reference answer.\n\n" +
      "Instruction:\nRewrite the sentence using a simile.\n\nInput:\nThe car is very fast.\n\n" +
      "Reference answer:\nThe car is as fast as lightning.\n\nModel response:\nThe car is as fast as a bullet.\n\n" +
      "Score the model response from 0 to 100, where 100 means as correct and complete as the reference answer " +
      "and 0 means wrong or no answer. Reply with the integer only, nothing else.",
  );
  assert.equal(
    judgePrompt(ENTRIES[2], "x"),
    "You are grading the response of a language model to an instruction, against a reference answer.\n\n" +
      "Instruction:\nName the author of 'Pride and Prejudice'.\n\nReference answer:\nJane Austen.\n\nModel response:\nx\n\n" +
      "Score the model response from 0 to 100, where 100 means as correct and complete as the reference answer " +
      "and 0 means wrong or no answer. Reply with the integer only, nothing else.",
  );
});

test("parseScore: the whole answer must be one integer 0-100, as the book's int(score)", () => {
  assert.deepEqual(parseScore("85"), { score: 85 });
  assert.deepEqual(parseScore(" 37\n"), { score: 37 });
  assert.deepEqual(parseScore("+0"), { score: 0 });
  assert.equal(parseScore("Score: 85").score, null);
  assert.equal(parseScore("85/100").score, null);
  assert.equal(parseScore("85.5").score, null);
  assert.equal(parseScore("").score, null);
  assert.deepEqual(parseScore("101"), { score: null, reason: "101 is outside 0-100" });
  assert.equal(parseScore("-3").score, null);
});

test("judge (streamed, the default) scores every entry, sends deterministic options, prints the exact mean of the server's integers", async () => {
  const server = await startStandIn({ reply: answerFor });
  try {
    const out = path.join(tmp, "streamed.json");
    const r = await judge(["--responses", responsesFile, "--host", server.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.requests.length, 5);
    for (const req of server.requests) {
      assert.equal(req.path, "/api/chat");
      assert.equal(req.body.model, "llama3");
      assert.equal(req.body.stream, true);
      assert.deepEqual(req.body.options, { seed: 123, temperature: 0, num_ctx: 2048 });
      assert.equal(req.body.messages.length, 1);
      assert.equal(req.body.messages[0].role, "user");
    }
    // every entry was asked about with its own prompt
    assert.deepEqual(server.requests.map(responseOf), ENTRIES.map((e) => e.model_response));
    const { n, mean } = expectedAverage(server.answers);
    assert.equal(n, 4);
    assert.equal(r.stdout, `Number of scores: ${n} of 5\nAverage score: ${mean}\n`);
    assert.equal(mean, "58.50"); // (85 + 37 + 100 + 12) / 4
    assert.match(r.stderr, /entry 3: unscored \(the answer is not an integer\): "I would give this response a score of 95\."/);
    const saved = JSON.parse(fs.readFileSync(out, "utf8"));
    assert.equal(saved.method, "llm-judge");
    assert.deepEqual(saved.scores.map((s: { score: number | null }) => s.score), [85, 37, 100, null, 12]);
    assert.deepEqual(saved.judge.options, { seed: 123, temperature: 0, num_ctx: 2048 });
  } finally {
    await server.close();
  }
});

test("--no-stream asks for one-piece answers and gives the same scores; OLLAMA_HOST picks the server", async () => {
  const server = await startStandIn({ reply: answerFor });
  try {
    const out = path.join(tmp, "one-piece.json");
    const r = await judge(["--responses", responsesFile, "--out", out, "--no-stream"], { OLLAMA_HOST: server.url });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(server.requests.every((q) => q.body.stream === false));
    const { n, mean } = expectedAverage(server.answers);
    assert.equal(r.stdout, `Number of scores: ${n} of 5\nAverage score: ${mean}\n`);
  } finally {
    await server.close();
  }
});

test("a stream cut off once is asked again; cut off every time: one line, the scores so far kept, and the next run continues", async () => {
  let cuts = 0;
  const flaky = await startStandIn({
    reply: (req, n) => {
      if (n === 1) { cuts++; return { cutAfter: "3", how: "destroy" }; } // entry 1's first answer breaks off mid-stream
      if (responseOf(req) === ENTRIES[3].model_response) { cuts++; return { cutAfter: "9", how: cuts % 2 ? "end" : "destroy" }; }
      return answerFor(req);
    },
  });
  const out = path.join(tmp, "resumed.json");
  try {
    const r = await judge(["--responses", responsesFile, "--host", flaky.url, "--out", out, "--retries", "2"]);
    assert.equal(r.code, 1, r.stdout);
    const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
    assert.equal(errors.length, 1, r.stderr);
    assert.match(errors[0], /^error: the judge's answer for entry 3 was cut off 3 times \(.+\); 3 of 5 scores are saved in .*resumed\.json: run the same command again to continue$/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
    // entries 0-2 were scored (entry 1 after one retry), entry 3 was tried 3 times
    assert.equal(flaky.requests.length, 1 + 2 + 1 + 3);
    const saved = JSON.parse(fs.readFileSync(out, "utf8"));
    assert.deepEqual(saved.scores.map((s: { index: number }) => s.index), [0, 1, 2]);
    assert.equal(r.stdout, "");
  } finally {
    await flaky.close();
  }
  const healthy = await startStandIn({ reply: answerFor });
  try {
    const r = await judge(["--responses", responsesFile, "--host", healthy.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(healthy.requests.map(responseOf), [ENTRIES[3].model_response, ENTRIES[4].model_response]);
    assert.match(r.stderr, /3 of 5 entries were scored before/);
    assert.equal(r.stdout, "Number of scores: 4 of 5\nAverage score: 58.50\n");
  } finally {
    await healthy.close();
  }
});

test("a model that is not pulled: one line naming it and the `ollama pull` command (from /api/tags, and from a 404 of /api/chat)", async () => {
  const none = await startStandIn({ models: ["phi3:latest"], reply: answerFor });
  try {
    const r = await judge(["--responses", responsesFile, "--host", none.url, "--out", path.join(tmp, "missing.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: the model "llama3" is not pulled on the Ollama at http:\/\/127\.0\.0\.1:\d+ \(it has phi3:latest\): run `ollama pull llama3`, or choose another with --model\n$/m);
    assert.equal(none.requests.length, 0, "nothing is asked before the model is there");
  } finally {
    await none.close();
  }
  // listed, then gone by the time of the chat: Ollama's 404 body
  const gone = await startStandIn({ models: ["llama3:latest"], reply: () => ({ status: 404, error: 'model "llama3" not found, try pulling it first' }) });
  try {
    const r = await judge(["--responses", responsesFile, "--host", gone.url, "--out", path.join(tmp, "gone.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: the model "llama3" is not pulled on the Ollama at .* \(model "llama3" not found, try pulling it first\): run `ollama pull llama3`/m);
  } finally {
    await gone.close();
  }
});

test("a server that is down: one line saying how to start Ollama", async () => {
  const port = await closedPort();
  const r = await judge(["--responses", responsesFile, "--host", `http://127.0.0.1:${port}`, "--out", path.join(tmp, "down.json")]);
  assert.equal(r.code, 1);
  assert.equal(r.stderr.split("\n").filter((l) => l.startsWith("error:")).length, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`error: cannot reach Ollama at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it with \`ollama serve\``));
  assert.ok(!fs.existsSync(path.join(tmp, "down.json")), "no scores file when nothing was scored");
});

test("an empty response scores 0 without a question; a scores file from another judge model is refused", async () => {
  const withEmpty = path.join(tmp, "with-empty.json");
  fs.writeFileSync(withEmpty, JSON.stringify([ENTRIES[0], { ...ENTRIES[1], model_response: "  " }]));
  const server = await startStandIn({ reply: answerFor });
  try {
    const out = path.join(tmp, "empty-scores.json");
    const r = await judge(["--responses", withEmpty, "--host", server.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.requests.length, 1);
    assert.equal(r.stdout, "Number of scores: 2 of 2\nAverage score: 42.50\n");
    const other = await judge(["--responses", withEmpty, "--host", server.url, "--out", out, "--model", "phi3"]);
    assert.equal(other.code, 1);
    assert.match(other.stderr, /^error: --out .*empty-scores\.json: holds scores made by llm-judge with llama3 on "model_response"; choose another --out or delete it to start over$/m);
  } finally {
    await server.close();
  }
});

test("a responses file without the field: one line naming the file, entry and field", async () => {
  const bad = path.join(tmp, "no-field.json");
  fs.writeFileSync(bad, JSON.stringify([ENTRIES[0], { instruction: "a", input: "", output: "b" }]));
  const r = await judge(["--responses", bad]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*no-field\.json: entry 1: field "model_response" is missing \(the field with the responses; choose another with --field\)$/m);
});

test("--api openai: the same scores through an OpenAI-compatible /v1 (streamed and not)", async () => {
  const server = await startStandIn({ models: ["llama3"], reply: answerFor });
  try {
    for (const stream of [true, false]) {
      const before = server.requests.length;
      const r = await judge(["--responses", responsesFile, "--api", "openai", "--host", server.url, "--out", path.join(tmp, `openai-${stream}.json`), ...(stream ? [] : ["--no-stream"])]);
      assert.equal(r.code, 0, r.stderr);
      const reqs = server.requests.slice(before);
      assert.equal(reqs.length, 5);
      for (const q of reqs) {
        assert.equal(q.path, "/v1/chat/completions");
        assert.equal(q.body.temperature, 0);
        assert.equal(q.body.seed, 123);
        assert.equal(q.body.stream, stream);
      }
      assert.equal(r.stdout, "Number of scores: 4 of 5\nAverage score: 58.50\n");
    }
  } finally {
    await server.close();
  }
});

test("--metric rouge-l scores offline against the reference outputs, labelled as a metric", async () => {
  const out = path.join(tmp, "rouge.json");
  const r = await judge(["--responses", responsesFile, "--metric", "rouge-l", "--out", out]);
  assert.equal(r.code, 0, r.stderr);
  const saved = JSON.parse(fs.readFileSync(out, "utf8"));
  assert.equal(saved.method, "rouge-l");
  const scores = saved.scores.map((s: { score: number }) => s.score);
  assert.equal(scores.length, 5);
  const mean = scores.reduce((a: number, b: number) => a + b, 0) / 5;
  assert.match(r.stdout, /NOT the LLM judge's score/);
  assert.match(r.stdout, new RegExp(`Number of scores: 5 of 5\nAverage ROUGE-L F1: ${mean.toFixed(2)}\n`));
  // "the car is as fast as a bullet" (8 words) vs "the car is as fast as lightning" (7): 6 in common, in order
  assert.ok(Math.abs(scores[0] - 100 * (2 * 6) / (8 + 7)) < 1e-9, `${scores[0]}`);
});
