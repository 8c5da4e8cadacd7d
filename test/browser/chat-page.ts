// Browser test of `npm run chat`'s page (lib/serve/page/), in headless Chromium, against the real
// server (started here, in this process, on a small random model saved as a GPT-2 folder):
//   - the page shows the model's name and the engine line, and loads nothing from elsewhere;
//   - a question typed and sent: the answer appears piece by piece while it is generated, and the
//     final text equals the API's whole (non-streamed) answer for the same settings;
//   - Stop in the middle of an answer: the page says stopped, and the server stopped generating;
//   - a request sent while another one runs: the page says it is waiting, then answers.
// Run by test/browser/run.ts (`npm run test:browser`, or `npm run test:browser -- chat` for this alone).
import * as path from "node:path";
import type { Browser, Page } from "playwright-core";
import { initEngine } from "../../lib/engine";
import type { GPTModel } from "../../lib/model/gpt";
import { loadGPT2Directory } from "../../lib/weights/gpt2-directory";
import { ChatServer, startChatServer } from "../../lib/serve/chat-server";
import { saveChatTestModel } from "../helpers/chat-model";

export interface ChatPageReport {
  failures: string[];
  summary: string;
}

declare const document: any; // the page's document, only used inside page.evaluate / waitForFunction

const QUESTION = "What is the capital of Italy?";
const JSON_HEADERS = { "Content-Type": "application/json" };

/** The assistant's last answer: its state, its text (without the small line under it). */
async function lastAnswer(page: Page): Promise<{ state: string; text: string; meta: string }> {
  return page.evaluate(() => {
    const answers = document.querySelectorAll("#conversation li.assistant");
    const li = answers[answers.length - 1];
    if (!li) return { state: "", text: "", meta: "" };
    const meta = li.querySelector(".meta");
    return { state: li.dataset.state ?? "", text: li.firstChild?.nodeType === 3 ? li.firstChild.textContent : "", meta: meta ? meta.textContent : "" };
  });
}

/** Record every text the newest answer shows while it streams (a MutationObserver in the page). */
async function watchAnswers(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as any;
    w.__seen = [];
    new (w.MutationObserver)(() => {
      const answers = document.querySelectorAll("#conversation li.assistant");
      const li = answers[answers.length - 1];
      if (li && li.dataset.state === "streaming") {
        const t = li.textContent;
        if (w.__seen[w.__seen.length - 1] !== t) w.__seen.push(t);
      }
    }).observe(document.getElementById("conversation"), { childList: true, subtree: true, characterData: true });
  });
}

async function sendFromPage(page: Page, text: string, maxTokens: number): Promise<void> {
  await page.fill("#max-tokens", String(maxTokens));
  await page.fill("#message", text);
  await page.press("#message", "Enter");
}

const waitForState = (page: Page, states: string[], timeout = 60_000) =>
  page.waitForFunction(
    (s: string[]) => {
      const answers = document.querySelectorAll("#conversation li.assistant");
      const li = answers[answers.length - 1];
      return !!li && s.includes(li.dataset.state);
    },
    states,
    { timeout, polling: 50 },
  );

export async function runChatPageTest(browser: Browser, shots: string): Promise<ChatPageReport> {
  const failures: string[] = [];
  const check = (ok: boolean, what: string) => ok || failures.push(what);
  let engineLine = "";
  await initEngine({ log: (line) => (engineLine = line) });
  const dir = await saveChatTestModel("chat-page-model");
  let model: GPTModel | null = null;
  let server: ChatServer | null = null;
  const context = await browser.newContext({ viewport: { width: 1000, height: 900 } });
  const page = await context.newPage();
  const jsErrors: string[] = [];
  const elsewhere: string[] = [];
  page.on("pageerror", (e) => jsErrors.push(e.message.split("\n")[0]));
  page.on("console", (m) => m.type() === "error" && jsErrors.push(`console: ${m.text()}`));
  let streamedStates = 0;
  try {
    model = await loadGPT2Directory(dir);
    server = await startChatServer({ model, name: "chat-page-model", engineLine, port: 0 });
    const origin = server.url;
    page.on("request", (r) => !r.url().startsWith(origin) && elsewhere.push(r.url()));
    await page.goto(`${origin}/`, { waitUntil: "load" });
    await page.waitForFunction(() => document.getElementById("model-name").textContent === "chat-page-model", undefined, { timeout: 10_000 });
    check((await page.textContent("#engine")) === engineLine, `the engine line shown is not the server's: ${await page.textContent("#engine")}`);
    await page.click("#settings summary"); // open the settings, as a reader would to change them
    await watchAnswers(page);

    // 1. type a question: the answer streams in, and equals the API's whole answer
    const api = await fetch(`${origin}/v1/chat/completions`, {
      method: "POST", headers: JSON_HEADERS,
      body: JSON.stringify({ messages: [{ role: "user", content: QUESTION }], max_tokens: 80, temperature: 0 }),
    }).then((r) => r.json());
    await sendFromPage(page, QUESTION, 80);
    await waitForState(page, ["done", "error", "stopped"]);
    const done = await lastAnswer(page);
    const seen: string[] = await page.evaluate(() => (window as any).__seen);
    streamedStates = seen.length;
    check(done.state === "done", `the answer ended as "${done.state}" (${done.meta})`);
    check(done.text === api.choices[0].message.content, `the page's answer differs from the API's:\n      page: ${JSON.stringify(done.text)}\n      API:  ${JSON.stringify(api.choices[0].message.content)}`);
    check(seen.length >= 5, `the answer was seen in ${seen.length} states while streaming: not token by token`);
    check(seen.every((t, k) => k === 0 || t.startsWith(seen[k - 1])), "a streamed state did not extend the one before");
    check(/maximum number of new tokens/.test(done.meta), `the line under a max-length answer: ${done.meta}`);
    await page.screenshot({ path: path.join(shots, "chat-page.png"), fullPage: true });

    // 2. Stop in the middle of a long answer
    const before = server.outcomes.length;
    await sendFromPage(page, "Tell me a long story.", 900);
    await page.waitForFunction(() => {
      const answers = document.querySelectorAll("#conversation li.assistant");
      return (answers[answers.length - 1]?.textContent ?? "").length > 20;
    }, undefined, { timeout: 30_000, polling: 20 });
    await page.click("#stop");
    await waitForState(page, ["stopped", "done", "error"]);
    const stopped = await lastAnswer(page);
    check(stopped.state === "stopped", `after Stop the answer is "${stopped.state}"`);
    check((await page.textContent("#status")) === "Stopped.", `status after Stop: ${await page.textContent("#status")}`);
    for (let i = 0; i < 200 && server.busy; i++) await new Promise((r) => setTimeout(r, 25));
    const outcome = server.outcomes.slice(before).pop();
    check(outcome?.finish === "client gone" && outcome.tokens < 900, `the server did not stop generating: ${JSON.stringify(outcome)}`);

    // 3. while another client's request runs, the page says it waits, then answers
    const other = new AbortController();
    const running = fetch(`${origin}/v1/chat/completions`, {
      method: "POST", headers: JSON_HEADERS, signal: other.signal,
      body: JSON.stringify({ messages: [{ role: "user", content: "Another question." }], max_tokens: 900, stream: true }),
    }).then((r) => r.text()).catch(() => "");
    for (let i = 0; i < 400 && !server.busy; i++) await new Promise((r) => setTimeout(r, 25));
    await sendFromPage(page, QUESTION, 80);
    let waitingShown = "";
    try {
      await page.waitForFunction(() => /Waiting for the model: 1 request ahead/.test(document.getElementById("status").textContent), undefined, { timeout: 20_000, polling: 20 });
      waitingShown = (await page.textContent("#status")) ?? "";
      await page.screenshot({ path: path.join(shots, "chat-page-waiting.png"), fullPage: true });
    } catch {
      failures.push(`no waiting notice while another request ran (status: ${await page.textContent("#status")})`);
    }
    other.abort();
    await running;
    await waitForState(page, ["done", "error", "stopped"]);
    const after = await lastAnswer(page);
    check(after.state === "done" && after.text === api.choices[0].message.content, `after waiting, the answer is "${after.state}": ${JSON.stringify(after.text)}`);
    if (waitingShown) check(waitingShown.includes("1 request ahead"), waitingShown);
  } catch (err) {
    failures.push(`could not run: ${(err as Error).message.split("\n")[0]}`);
    await page.screenshot({ path: path.join(shots, "chat-page-failed.png") }).catch(() => undefined);
  } finally {
    await context.close();
    await server?.stop();
    model?.dispose();
  }
  for (const e of jsErrors) failures.push(`page error: ${e}`);
  for (const u of elsewhere) failures.push(`the page loaded something from elsewhere: ${u}`);
  return { failures, summary: `answer seen in ${streamedStates} states while streaming; stop, waiting notice, API equality checked` };
}
