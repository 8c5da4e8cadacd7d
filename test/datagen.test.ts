// Data generation through Ollama (ch07/04 `create-preference-data-ollama`, ch07/05 `llama3-ollama`):
// `npm run make-preferences` and `npm run make-instructions` spawned as a user runs them, against a
// stand-in server on 127.0.0.1 that speaks Ollama's and the OpenAI-compatible protocols
// (test/helpers/stand-in-judge.ts): what is asked and with which settings, what is written, and
// the failures (a server that is down, a model not pulled, answers cut off or empty) with the
// work so far kept and continued by the next run.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { findNearDuplicates } from "../lib/data/near-duplicates";
import { validateInstructionData } from "../lib/data/instruction-data";
import { extractInstruction, LLAMA3_USER_HEADER, makeInstructions, progressFile } from "../lib/datagen/instructions";
import type { AskOptions, JudgeClient } from "../lib/eval/judge-client";
import { politenessDraws, preferencePrompt } from "../lib/datagen/preferences";
import { ChatRequest, closedPort, startStandIn } from "./helpers/stand-in-judge";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "datagen-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function run(command: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(TSX, [path.join(ROOT, "lib", "cli", `${command}.ts`), "--retry-delay-ms", "0", ...args], { cwd: ROOT, env: { ...process.env, OLLAMA_HOST: "", ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
const errorLines = (stderr: string) => stderr.split("\n").filter((l) => l.startsWith("error:"));

const ENTRIES = [
  { instruction: "Evaluate the following phrase by transforming it into the spelling given.", input: "freind --> friend", output: "The spelling of the given phrase \"freind\" is incorrect, the correct spelling is \"friend\"." },
  { instruction: "Edit the following sentence for grammar.", input: "He go to the park every day.", output: "He goes to the park every day." },
  { instruction: "Convert 45 kilometers to meters.", input: "", output: "45 kilometers is 45000 meters." },
  { instruction: "Rewrite this sentence to start with 'Although': Despite the rain, they went for a walk.", input: "", output: "Although it was raining, they went for a walk." },
  { instruction: "What are the first 10 square numbers?", input: "", output: "1, 4, 9, 16, 25, 36, 49, 64, 81, 100." },
];
const dataFile = path.join(tmp, "instruction-data.json");
fs.writeFileSync(dataFile, JSON.stringify(ENTRIES, null, 4));

/** The stand-in rewrites: which tone was asked for, and the output it was given. */
function rewrite(req: ChatRequest): string {
  const prompt = req.body.messages[0].content;
  const entry = ENTRIES.find((e) => prompt === preferencePrompt(e, "polite") || prompt === preferencePrompt(e, "impolite"));
  if (!entry) return "unknown prompt";
  return `${prompt === preferencePrompt(entry, "polite") ? "Kindly note:" : "Obviously,"} ${entry.output}`;
}

test("make-preferences: each entry gains chosen and rejected as the book assigns them, from the seeded draws, with the book's settings", async () => {
  const server = await startStandIn({ reply: rewrite });
  try {
    const out = path.join(tmp, "prefs.json");
    const r = await run("make-preferences", ["--data", dataFile, "--host", server.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(server.requests.length, 5);
    for (const q of server.requests) {
      assert.equal(q.path, "/api/chat");
      assert.deepEqual(q.body.options, { seed: 123, temperature: 0, num_ctx: 2048 });
      assert.equal(q.body.messages[0].role, "user");
    }
    const draws = politenessDraws(5, 123);
    assert.ok(draws.includes("polite") && draws.includes("impolite"), `both tones drawn: ${draws}`);
    const saved = JSON.parse(fs.readFileSync(out, "utf8"));
    saved.forEach((e: Record<string, string>, i: number) => {
      const polite = draws[i] === "polite";
      assert.equal(e.chosen, polite ? `Kindly note: ${ENTRIES[i].output}` : ENTRIES[i].output);
      assert.equal(e.rejected, polite ? ENTRIES[i].output : `Obviously, ${ENTRIES[i].output}`);
      assert.deepEqual(Object.keys(e), ["instruction", "input", "output", ...(polite ? ["chosen", "rejected"] : ["rejected", "chosen"])]);
    });
    assert.match(r.stdout, /5 entries with chosen and rejected answers/);
  } finally {
    await server.close();
  }
});

test("make-preferences: cut off every time, one line with the entries so far; the next run continues to the same file; --api openai too", async () => {
  const whole = fs.readFileSync(path.join(tmp, "prefs.json"), "utf8");
  const out = path.join(tmp, "prefs-resumed.json");
  let n = 0;
  const flaky = await startStandIn({ reply: (req) => (n++ >= 3 ? { cutAfter: "Kind", how: n % 2 ? "end" : "destroy" } : rewrite(req)) });
  try {
    const r = await run("make-preferences", ["--data", dataFile, "--host", flaky.url, "--out", out, "--retries", "1"]);
    assert.equal(r.code, 1, r.stdout);
    assert.equal(errorLines(r.stderr).length, 1, r.stderr);
    assert.match(errorLines(r.stderr)[0], /^error: entry 3: the answer was cut off \(.+\), 2 times; 3 of 5 entries are saved in .*prefs-resumed\.json: run the same command again to continue$/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(JSON.parse(fs.readFileSync(out, "utf8")).length, 3);
  } finally {
    await flaky.close();
  }
  const healthy = await startStandIn({ models: ["llama3"], reply: rewrite });
  try {
    const r = await run("make-preferences", ["--data", dataFile, "--api", "openai", "--host", healthy.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(healthy.requests.map((q) => q.path), ["/v1/chat/completions", "/v1/chat/completions"], "only entries 3 and 4 were asked");
    assert.ok(healthy.requests.every((q) => q.body.seed === 123 && q.body.temperature === 0));
    assert.match(r.stderr, /3 of 5 entries were made before/);
    assert.equal(fs.readFileSync(out, "utf8"), whole, "the continued file equals an uninterrupted run's");
    const other = path.join(tmp, "other-data.json");
    fs.writeFileSync(other, JSON.stringify([ENTRIES[1], ENTRIES[0]]));
    const wrong = await run("make-preferences", ["--data", other, "--host", healthy.url, "--out", out]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /^error: --out .*prefs-resumed\.json: holds 5 entries, more than the 2 of the data/m);
  } finally {
    await healthy.close();
  }
});

test("make-preferences: a server that is down, a model not pulled, an empty answer: one line each, nothing half-written", async () => {
  const port = await closedPort();
  const down = await run("make-preferences", ["--data", dataFile, "--host", `http://127.0.0.1:${port}`, "--out", path.join(tmp, "down.json")]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, new RegExp(`^error: cannot reach Ollama at http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED\\): start it with \`ollama serve\``, "m"));
  assert.ok(!fs.existsSync(path.join(tmp, "down.json")));
  const phi = await startStandIn({ models: ["phi3:latest"], reply: rewrite });
  try {
    const r = await run("make-preferences", ["--data", dataFile, "--host", phi.url, "--out", path.join(tmp, "nomodel.json")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^error: the model "llama3" is not pulled on the Ollama at .* \(it has phi3:latest\): run `ollama pull llama3`, or choose another with --model$/m);
    assert.equal(phi.requests.length, 0);
  } finally {
    await phi.close();
  }
  const empty = await startStandIn({ reply: () => "  \n" });
  try {
    const r = await run("make-preferences", ["--data", dataFile, "--host", empty.url, "--out", path.join(tmp, "empty.json"), "--retries", "2"]);
    assert.equal(r.code, 1);
    assert.match(errorLines(r.stderr)[0], /^error: entry 0: an empty answer, 3 times$/);
    assert.equal(empty.requests.length, 3);
    assert.ok(!fs.existsSync(path.join(tmp, "empty.json")));
  } finally {
    await empty.close();
  }
});

/** What the stand-in Llama 3 writes for try t (seed 123 + t): instructions, some unusable or repeated. */
const WRITTEN: string[] = [
  "What is the capital of France?\nI need it for a quiz.",
  "\n\nHow do I make a cup of green tea?",
  "What's the capital of France?", // a near-duplicate of try 0
  "", // nothing
  "<|start_header_id|>assistant<|end_header_id|>", // the template leaking through
  "Explain photosynthesis in one sentence.",
  "Give three tips for learning a new language.",
  "Name a planet in our solar system.",
];
function llama(req: ChatRequest): string {
  const m = req.body.messages[0];
  const seed = (req.body.options?.seed ?? req.body.seed) as number;
  if (m.role === "assistant" && m.content === LLAMA3_USER_HEADER) return WRITTEN[seed - 123] || " ";
  if (m.role === "user") return `Here is an answer to "${m.content}": ${m.content.split(" ").reverse().join(" ")}`;
  return "unexpected";
}

test("make-instructions: the header trick with a seed per try, checked entries, no near-duplicates, the chapter's format", async () => {
  const server = await startStandIn({ reply: llama });
  try {
    const out = path.join(tmp, "generated.json");
    const r = await run("make-instructions", ["--count", "4", "--host", server.url, "--out", out]);
    assert.equal(r.code, 0, r.stderr);
    const entries = JSON.parse(fs.readFileSync(out, "utf8"));
    assert.deepEqual(entries.map((e: { instruction: string }) => e.instruction), [
      "What is the capital of France?", "How do I make a cup of green tea?", "Explain photosynthesis in one sentence.", "Give three tips for learning a new language.",
    ]);
    assert.deepEqual(validateInstructionData(entries, out), entries, "the chapter's format, input empty");
    for (const field of ["instruction", "output"]) assert.deepEqual(findNearDuplicates(entries, field), [], `no near-duplicates in ${field}`);
    // tries 0-6: each instruction request is the header alone as an assistant message, seed 123 + try, temperature 1, top_p 1
    const header = server.requests.filter((q) => q.body.messages[0].role === "assistant");
    assert.deepEqual(header.map((q) => q.body.options?.seed), [123, 124, 125, 126, 127, 128, 129]);
    assert.ok(header.every((q) => q.body.messages[0].content === LLAMA3_USER_HEADER && q.body.options?.temperature === 1 && q.body.options?.top_p === 1));
    assert.equal(server.requests.length - header.length, 4, "an answer was asked only for the instructions kept");
    const progress = JSON.parse(fs.readFileSync(path.join(tmp, "generated.progress.json"), "utf8"));
    assert.equal(progress.tries, 7);
    assert.deepEqual(progress.rejected.map((x: { why: string }) => x.why), [
      "a near-duplicate of entry 0's instruction", "no instruction in the answer", "a chat-template token in the instruction",
    ]);
    assert.equal(header.length, 7, "an empty answer is not asked again with the same seed: it is a rejected try");
    assert.match(r.stdout, /4 entries in .*generated\.json after 7 tries/);
    // run again with a larger count: it continues with new seeds
    const more = await run("make-instructions", ["--count", "5", "--host", server.url, "--out", out]);
    assert.equal(more.code, 0, more.stderr);
    assert.equal(JSON.parse(fs.readFileSync(out, "utf8"))[4].instruction, "Name a planet in our solar system.");
    assert.match(more.stderr, /4 entries were made before/);
  } finally {
    await server.close();
  }
});

test("make-instructions: too many tries, a cut stream, a server down: one line each, the entries so far kept", async () => {
  const server = await startStandIn({ reply: (req) => (req.body.messages[0].role === "assistant" ? "What is the capital of France?" : "Paris.") });
  try {
    const out = path.join(tmp, "stuck.json");
    const r = await run("make-instructions", ["--count", "3", "--max-tries", "4", "--host", server.url, "--out", out]);
    assert.equal(r.code, 1);
    assert.match(errorLines(r.stderr)[0], /^error: only 1 of 3 entries after 4 tries \(3 rejected, see .*stuck\.progress\.json\); those made are saved in .*stuck\.json: run again with a higher --max-tries to continue, or try another --model or --temperature$/);
    assert.equal(JSON.parse(fs.readFileSync(out, "utf8")).length, 1);
  } finally {
    await server.close();
  }
  const cut = await startStandIn({ models: ["llama3"], reply: (req) => (req.body.messages[0].role === "user" ? { cutAfter: "Par", how: "destroy" } : llama(req)) });
  try {
    const r = await run("make-instructions", ["--count", "2", "--api", "openai", "--host", cut.url, "--out", path.join(tmp, "cut.json"), "--retries", "1"]);
    assert.equal(r.code, 1);
    assert.match(errorLines(r.stderr)[0], /^error: try 0 \(answer\): the answer was cut off \(.+\), 2 times$/);
  } finally {
    await cut.close();
  }
  const port = await closedPort();
  const down = await run("make-instructions", ["--count", "2", "--api", "openai", "--host", `http://127.0.0.1:${port}`, "--out", path.join(tmp, "down.json")]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error: cannot reach the OpenAI-compatible server at http:\/\/127\.0\.0\.1:\d+\/v1 \(ECONNREFUSED\)/m);
});

test("extractInstruction is the book's: the first line with text, trimmed", () => {
  assert.equal(extractInstruction("\n\n  How do I bake bread?  \nMore."), "How do I bake bread?");
  assert.equal(extractInstruction(" \n\t\n"), null);
});

test("make-instructions: a pair that crosses the threshold only once the file is full is dropped, and the run fills the file again", async () => {
  // found by search: each instruction passes against those before it (threshold 0.5), but with "sea"
  // added the weights shift and "bat" / "bat eat eat" reach 0.505; one-character answers are never compared
  const written = ["ale", "bat", "bat eat eat", "sea", "cow"];
  const client: JudgeClient = {
    settings: { api: "ollama", host: "stub", model: "stub", seed: 123, temperature: 1, numCtx: 2048, stream: true },
    ready: async () => undefined,
    ask: async (prompt: string, opts: AskOptions = {}) => (opts.role === "assistant" ? written[(opts.seed as number) - 123] : String(written.indexOf(prompt))),
  };
  const out = path.join(tmp, "late.json");
  const result = await makeInstructions(client, { count: 4, out, seed: 123, temperature: 1, threshold: 0.5 });
  assert.deepEqual(result.entries.map((e) => e.instruction), ["ale", "bat", "sea", "cow"]);
  assert.equal(result.tries, 5);
  assert.deepEqual(findNearDuplicates(result.entries, "instruction", 0.5), []);
  const progress = JSON.parse(fs.readFileSync(progressFile(out), "utf8"));
  assert.deepEqual(progress.rejected, [{ try: -1, instruction: "bat eat eat", why: "a near-duplicate in instruction once the file was full" }]);
});
