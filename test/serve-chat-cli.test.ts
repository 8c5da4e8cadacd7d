// `npm run chat`, spawned as a user runs it: it prints where it serves, Ctrl-C in the middle of an
// answer stops it cleanly (the answer ends, the process exits 0 and says so, at once); a port in
// use is one `error:` line; without --weights, offline, it serves the small random model with its banner.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { saveChatTestModel } from "./helpers/chat-model";

const ROOT = path.resolve(__dirname, "..");
const CHAT = path.join(ROOT, "lib", "cli", "chat.ts");
const dirs: string[] = [];
const JSON_HEADERS = { "Content-Type": "application/json" };
after(() => dirs.forEach((d) => fs.rmSync(path.dirname(d), { recursive: true, force: true })));

interface Running {
  child: ChildProcess;
  /** stdout and stderr together (their order across the two pipes is not kept) */
  out: () => string;
  stdout: () => string;
  exit: Promise<number | null>;
}

/** Start `chat` (node itself, so a signal reaches the command, not a wrapper). */
function startChat(args: string[], env: Record<string, string> = {}): Running {
  const child = spawn(process.execPath, ["--import", "tsx", CHAT, "--port", "0", ...args], { cwd: ROOT, env: { ...process.env, ...env } });
  let out = "";
  let stdout = "";
  child.stdout?.on("data", (d) => ((out += d), (stdout += d)));
  child.stderr?.on("data", (d) => (out += d));
  const exit = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  return { child, out: () => out, stdout: () => stdout, exit };
}

/** The chat page's address, once the command has printed it. */
async function address(r: Running): Promise<string> {
  for (let i = 0; i < 1200; i++) {
    const m = /^chat page: (http:\/\/\S+)\/$/m.exec(r.out());
    if (m) return m[1];
    if (r.child.exitCode !== null) break;
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`chat did not start:\n${r.out()}`);
}

test("Ctrl-C mid-answer: the answer ends, the command says so and exits 0", async () => {
  const dir = await saveChatTestModel("ctrl-c-model");
  dirs.push(dir);
  const r = startChat(["--weights", dir]);
  const url = await address(r);
  assert.match(r.out(), /^engine: /m);
  assert.match(r.out(), /serving ctrl-c-model/);
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST", headers: JSON_HEADERS,
    body: JSON.stringify({ messages: [{ role: "user", content: "Tell me a long story." }], max_tokens: 900, stream: true }),
  });
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  let body = "";
  while ((body.match(/"content":"[^"]/g) ?? []).length < 3) body += new TextDecoder().decode((await reader.read()).value);
  const t0 = Date.now();
  r.child.kill("SIGINT");
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) break;
    body += new TextDecoder().decode(value);
  }
  const code = await r.exit;
  assert.equal(code, 0, r.out());
  assert.ok(Date.now() - t0 < 10_000, `took ${Date.now() - t0} ms to stop`);
  assert.match(r.out(), /SIGINT: stopping/);
  assert.match(r.stdout(), /\nstopped\n$/, "the last line");
  assert.match(r.out(), /POST \/v1\/chat\/completions 503 stream: \d+ tokens .*\(server stopping\)/);
  assert.ok(!body.includes("[DONE]"), "the answer did not run to its end");
  assert.match(body, /"server_stopping"/, "the stream says why it ended");
});

test("a port in use is one error line, exit code 1", async () => {
  const dir = await saveChatTestModel("port-model");
  dirs.push(dir);
  const blocker = net.createServer();
  await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
  const port = (blocker.address() as net.AddressInfo).port;
  const r = startChat(["--weights", dir, "--port", String(port)]);
  const code = await r.exit;
  blocker.close();
  assert.equal(code, 1);
  assert.match(r.out(), new RegExp(`^error: port ${port} on 127\\.0\\.0\\.1 is in use \\(another chat server\\?\\): choose another with --port$`, "m"));
  assert.ok(!/\n\s+at /.test(r.out()), "no stack trace");
});

test("offline without --weights: the small random model, with its banner on the page's /info", async () => {
  const r = startChat([], { COURSE_OFFLINE: "1" });
  const url = await address(r);
  assert.match(r.out(), /NOT PRETRAINED/);
  const info = await (await fetch(`${url}/info`)).json();
  assert.equal(info.model, "tiny");
  assert.match(info.banner, /NOT PRETRAINED/);
  assert.match(info.engine, /^engine: /);
  const page = await fetch(`${url}/`);
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  assert.match(await page.text(), /<script src="\/chat\.js"/);
  r.child.kill("SIGTERM");
  assert.equal(await r.exit, 0, r.out());
});
