// The chat server's OpenAI-compatible API (lib/serve/), through the official `openai` npm client:
// whole and streamed answers, both equal to the library's responseForPrompt and to what
// `npm run generate` prints for the same instruction; GET /v1/models; one-line JSON errors with the
// right statuses; one request at a time, with the waiting notice; a client that goes away, waiting
// or mid-answer, stops its request; and `npm run judge -- --api openai` talking to it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import OpenAI from "openai";
import { initEngine } from "../lib/engine";
import { formatInput } from "../lib/data/prompt";
import type { GPTModel } from "../lib/model/gpt";
import { loadGPT2Directory } from "../lib/weights/gpt2-directory";
import { responseForPrompt } from "../lib/generate/generate";
import { ChatServer, startChatServer } from "../lib/serve/chat-server";
import { saveChatTestModel } from "./helpers/chat-model";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const NAME = "micro-chat";
const QUESTION = "What is the capital of Italy?";
const JSON_HEADERS = { "Content-Type": "application/json" };
let dir: string;
let model: GPTModel;
let server: ChatServer;
let client: OpenAI;

before(async () => {
  await initEngine({ log: () => {} });
  dir = await saveChatTestModel(NAME);
  model = await loadGPT2Directory(dir);
  server = await startChatServer({ model, name: NAME, engineLine: "engine: test", port: 0 });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "none", maxRetries: 0 });
});
after(async () => {
  await server?.stop();
  model?.dispose();
  if (dir) fs.rmSync(path.dirname(dir), { recursive: true, force: true });
});

const ask = (content: string, extra: Record<string, unknown> = {}) => ({ model: NAME, messages: [{ role: "user" as const, content }], ...extra });

/** The streamed answer as the client reads it: the text, the chunks, and the last finish_reason. */
async function streamed(content: string, extra: Record<string, unknown> = {}) {
  const stream = await client.chat.completions.create({ ...ask(content, extra), stream: true });
  const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
  return { text, chunks, finish: chunks.flatMap((c) => c.choices.map((x) => x.finish_reason)).filter((f) => f != null).pop() };
}

/** Wait (up to 10 s) until `ok()` holds. */
async function until(ok: () => boolean): Promise<void> {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(ok(), "timed out waiting for the server");
}

/** Wait until the server has no request running or waiting. */
async function idle(): Promise<void> {
  for (let i = 0; i < 400 && (server.busy || server.waiting > 0); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(!server.busy && server.waiting === 0, "the server stayed busy");
}

test("GET /v1/models lists the one model served, by its folder's name", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), [NAME]);
  assert.equal((await client.models.retrieve(NAME)).id, NAME);
});

test("greedy: the whole answer and the streamed one equal responseForPrompt and `npm run generate`", async () => {
  const expected = await responseForPrompt(model, formatInput({ instruction: QUESTION, input: "" }), { maxNewTokens: 40 });
  const whole = await client.chat.completions.create(ask(QUESTION, { max_tokens: 40, temperature: 0 }));
  assert.equal(whole.object, "chat.completion");
  assert.equal(whole.choices[0].message.role, "assistant");
  assert.equal(whole.choices[0].message.content, expected);
  assert.equal(whole.choices[0].finish_reason, "length"); // random weights never pick <|endoftext|> here
  assert.equal(whole.usage?.completion_tokens, 40);
  const s = await streamed(QUESTION, { max_tokens: 40, stream_options: { include_usage: true } });
  assert.equal(s.text, expected);
  assert.ok(s.chunks.filter((c) => c.choices[0]?.delta?.content).length >= 10, "the answer came in many pieces");
  assert.equal(s.chunks[0].choices[0].delta.role, "assistant");
  assert.equal(s.finish, "length");
  assert.deepEqual(s.chunks.at(-1)?.usage, { prompt_tokens: whole.usage?.prompt_tokens, completion_tokens: 40, total_tokens: (whole.usage?.prompt_tokens ?? 0) + 40 });
  const cli = spawnSync(TSX, [path.join(ROOT, "lib", "cli", "generate.ts"), "--weights", dir, "--instruction", QUESTION, "--max-new-tokens", "40"], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  assert.equal(cli.status, 0, cli.stderr);
  assert.equal(cli.stdout, `${expected}\n`, "npm run generate prints the same answer");
});

test("sampling: temperature, top_k and seed give the library's sample, in both modes", async () => {
  const settings = { maxNewTokens: 30, temperature: 0.8, topK: 20, seed: 5 };
  const expected = await responseForPrompt(model, formatInput({ instruction: QUESTION, input: "" }), settings);
  const extra = { max_tokens: 30, temperature: 0.8, top_k: 20, seed: 5 };
  assert.equal((await client.chat.completions.create(ask(QUESTION, extra))).choices[0].message.content, expected);
  assert.equal((await streamed(QUESTION, extra)).text, expected);
  const greedy = await responseForPrompt(model, formatInput({ instruction: QUESTION, input: "" }), { maxNewTokens: 30 });
  assert.notEqual(expected, greedy, "sampling changed the answer");
});

test("--prompt-style phi3 (exercise 7.1): the Phi-3 prompt, and the answer extracted after <|assistant|>:", async () => {
  const phi3 = await startChatServer({ model, name: NAME, engineLine: "engine: test", port: 0, promptStyle: "phi3" });
  try {
    const expected = await responseForPrompt(model, formatInput({ instruction: QUESTION, input: "" }, "phi3"), { maxNewTokens: 30, promptStyle: "phi3" });
    const phiClient = new OpenAI({ baseURL: `${phi3.url}/v1`, apiKey: "none", maxRetries: 0 });
    const whole = await phiClient.chat.completions.create(ask(QUESTION, { max_tokens: 30 }));
    assert.equal(whole.choices[0].message.content, expected);
    const alpaca = await responseForPrompt(model, formatInput({ instruction: QUESTION, input: "" }), { maxNewTokens: 30 });
    assert.notEqual(expected, alpaca, "another prompt, another answer");
  } finally {
    await phi3.stop();
  }
});

test("the last user message is the instruction; text parts are joined", async () => {
  const expected = (await client.chat.completions.create(ask(QUESTION, { max_tokens: 8 }))).choices[0].message.content;
  const multi = await client.chat.completions.create({
    model: NAME, max_tokens: 8,
    messages: [{ role: "system", content: "be brief" }, { role: "user", content: "an earlier question" }, { role: "assistant", content: "an answer" },
      { role: "user", content: [{ type: "text", text: "What is the capital " }, { type: "text", text: "of Italy?" }] }],
  });
  assert.equal(multi.choices[0].message.content, expected);
});

test("bad requests: a 4xx with one line of JSON naming what is wrong", async () => {
  const cases: [unknown, number, RegExp][] = [
    [{ model: NAME }, 400, /^messages: missing/],
    [{ messages: [] }, 400, /^messages: expected a non-empty array/],
    [{ messages: [{ role: "assistant", content: "hi" }] }, 400, /no message with role "user"/],
    [{ messages: [{ role: "user", content: 42 }] }, 400, /^messages\[0\]\.content: expected a string/],
    [{ messages: [{ role: "user", content: "  " }] }, 400, /the last user message is empty/],
    [{ messages: [{ role: "user", content: "hi" }], temperature: "hot" }, 400, /^temperature: expected a number from 0 to 2/],
    [{ messages: [{ role: "user", content: "hi" }], max_tokens: 0 }, 400, /^max_tokens: expected an integer >= 1/],
    [{ messages: [{ role: "user", content: "hi" }], top_p: 0.5 }, 400, /^top_p: /],
    [{ messages: [{ role: "user", content: "hi" }], stream: "yes" }, 400, /^stream: expected true or false/],
    [{ messages: [{ role: "user", content: "word ".repeat(1100) }] }, 400, /the prompt is \d+ tokens and the model's context is 1024/],
    [{ model: "gpt-4o", messages: [{ role: "user", content: "hi" }] }, 404, /the model "gpt-4o" is not served here; this server serves "micro-chat"/],
    ["not json", 400, /^the body is not valid JSON/],
    [[1, 2], 400, /^the body must be a JSON object, got array/],
  ];
  for (const [body, status, message] of cases) {
    const res = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    assert.equal(res.status, status, `${JSON.stringify(body).slice(0, 80)}: ${text}`);
    assert.equal(text.trim().split("\n").length, 1, "one line");
    assert.match(JSON.parse(text).error.message, message);
  }
  const big = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: "x".repeat(2 << 20) }).catch((e: Error) => e);
  if (!(big instanceof Error)) assert.equal(big.status, 413); // the server may also cut the upload short
  assert.equal((await fetch(`${server.url}/v1/chat/completions`)).status, 405);
  // another web page cannot drive the model: no JSON content type (what a cross-origin form or fetch sends
  // without a preflight), or a Host that is not a loopback name (a DNS-rebinding page)
  const plain = await fetch(`${server.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify(ask(QUESTION)) });
  assert.equal(plain.status, 415);
  assert.match((await plain.json()).error.message, /Content-Type: application\/json/);
  const foreign = await new Promise<{ status?: number; body: string }>((resolve, reject) => {
    const req = http.request(`${server.url}/v1/models`, { headers: { Host: "attacker.example:8000" } }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
  assert.equal(foreign.status, 403);
  assert.match(JSON.parse(foreign.body).error.message, /^Host "attacker\.example:8000" refused/);
  assert.equal((await fetch(`${server.url}/v2/anything`)).status, 404);
  // and through the client: its own error classes
  await assert.rejects(client.chat.completions.create(ask("")), (e: unknown) => e instanceof OpenAI.BadRequestError);
  await assert.rejects(client.chat.completions.create({ ...ask(QUESTION), model: "nope" }), (e: unknown) => e instanceof OpenAI.NotFoundError);
  await idle();
});

test("one request at a time: the second waits, is told so, and gets the same answer as alone", async () => {
  const alone = (await client.chat.completions.create(ask("Name a planet.", { max_tokens: 20 }))).choices[0].message.content;
  const first = streamed(QUESTION, { max_tokens: 900 });
  await until(() => server.busy);
  const second = fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ ...ask("Name a planet.", { max_tokens: 20 }), stream: true }) });
  await until(() => server.waiting === 1);
  const body = await (await second).text();
  assert.equal((await first).finish, "length", "the first ran to its end");
  assert.match(body, /^: waiting: 1 request ahead\n\n: generating\n\n/, "the waiting notice comes first");
  const text = body.split("\n").filter((l) => l.startsWith("data: {")).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? "").join("");
  assert.equal(text, alone);
  assert.ok(body.endsWith("data: [DONE]\n\n"));
});

test("a client that goes away mid-answer stops its generation; one that leaves the line never runs", async () => {
  const before = server.outcomes.length;
  const long = await client.chat.completions.create({ ...ask(QUESTION, { max_tokens: 900 }), stream: true });
  await until(() => server.busy);
  // a second request waits behind it, then gives up
  const waiting = new AbortController();
  const second = fetch(`${server.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ ...ask("Name a planet.", { max_tokens: 900 }), stream: true }), signal: waiting.signal })
    .then((r) => r.text()).catch((e: Error) => e.name);
  await until(() => server.waiting === 1);
  waiting.abort();
  assert.equal(await second, "AbortError");
  await until(() => server.waiting === 0);
  let pieces = 0;
  for await (const chunk of long) {
    if (chunk.choices[0]?.delta?.content) pieces++;
    if (pieces === 3) break; // the client aborts the request
  }
  await idle();
  const outcomes = server.outcomes.slice(before);
  assert.equal(outcomes.length, 2, JSON.stringify(outcomes));
  assert.ok(outcomes.every((o) => o.finish === "client gone" && o.status === 499), JSON.stringify(outcomes));
  assert.deepEqual(outcomes.map((o) => o.tokens === 0), [true, false], "the waiting one never generated, the running one did");
  assert.ok(outcomes[1].tokens < 900, `the running one stopped early: ${JSON.stringify(outcomes)}`);
  // and the server goes on serving
  assert.equal((await client.chat.completions.create(ask(QUESTION, { max_tokens: 3 }))).choices[0].finish_reason, "length");
});

test("`npm run judge -- --api openai` talks to it (the course's own OpenAI client path)", async () => {
  const responses = path.join(path.dirname(dir), "responses.json");
  fs.writeFileSync(responses, JSON.stringify([
    { instruction: "Name a planet.", input: "", output: "Mars.", model_response: "Venus." },
    { instruction: QUESTION, input: "", output: "Rome.", model_response: "Rome." },
  ]));
  const child = spawn(TSX, [path.join(ROOT, "lib", "cli", "judge.ts"), "--api", "openai", "--host", server.url, "--model", NAME, "--responses", responses], { cwd: ROOT, env: { ...process.env, OLLAMA_HOST: "" } });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  assert.equal(code, 0, out);
  // the random model's answers are not integers: unscored, as the book counts them; the protocol worked
  assert.match(out, /Number of scores: \d of 2/);
  const scores = JSON.parse(fs.readFileSync(responses.replace(/\.json$/, "-scores.json"), "utf8"));
  assert.equal(scores.scores.length, 2);
  assert.ok(scores.scores.every((s: { answer: string }) => s.answer.length > 0), "the judge got an answer for each entry");
});
