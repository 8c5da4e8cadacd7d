/**
 * The chat server behind `npm run chat` (the book's ch07/06 user interface, without Chainlit):
 * one fine-tuned model, served over HTTP on a local address as
 *   GET  /                     the chat page (page/: plain HTML, CSS and JavaScript, nothing to build,
 *                              nothing fetched from elsewhere, so it works offline)
 *   GET  /info                 what the page shows: the model, the engine line, the banner, the defaults
 *   GET  /v1/models            the OpenAI-compatible model list (one model)
 *   POST /v1/chat/completions  the OpenAI-compatible chat endpoint (chat-completions.ts)
 * Every error is one line of JSON in OpenAI's shape. `stop()` stops cleanly: waiting requests
 * are refused, the running one is stopped at its next token, connections are closed.
 *
 * Other web pages the learner has open must not drive the model: a POST must say it is JSON
 * (which a page of another origin cannot send without a CORS preflight, and none is answered), and
 * on a loopback address the Host must be a loopback name (a DNS-rebinding page's Host is its own).
 */
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { BOOK_MAX_NEW_TOKENS } from "../core/book";
import type { PromptStyle } from "../data/prompt";
import type { GPTModel } from "../model/gpt";
import { ActiveChat, ChatOutcome, handleChatCompletion, sendJson, ServedModel } from "./chat-completions";
import { ApiError, modelsBody, nowSeconds } from "./openai-protocol";
import { RequestQueue } from "./queue";

export interface ChatServerOptions {
  model: GPTModel;
  /** the model's id for clients, e.g. the weights folder's name */
  name: string;
  /** the prompt format it was fine-tuned on (default "alpaca") */
  promptStyle?: PromptStyle;
  /** the engine line the command printed ("engine: wasm (...)"), shown on the page */
  engineLine: string;
  /** the NOT PRETRAINED banner when the model is random, shown on the page */
  banner?: string | null;
  /** default 127.0.0.1: only this machine; 0.0.0.0 opens it to the network */
  host?: string;
  /** default 8000; 0 picks a free port */
  port?: number;
  /** one line per request (default: none) */
  log?: (line: string) => void;
}

export interface ChatServer {
  /** e.g. http://127.0.0.1:8000 */
  url: string;
  port: number;
  /** every finished request, in order (for the tests and the log) */
  outcomes: ChatOutcome[];
  /** how many requests are generating (0 or 1) and waiting */
  readonly busy: boolean;
  readonly waiting: number;
  /** Stop: refuse the waiting requests, stop the running one, close every connection. */
  stop(): Promise<void>;
}

const PAGE_DIR = path.join(__dirname, "page");
const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "chat.html", type: "text/html; charset=utf-8" },
  "/chat.js": { file: "chat.js", type: "text/javascript; charset=utf-8" },
  "/chat.css": { file: "chat.css", type: "text/css; charset=utf-8" },
};
// the page may load its own files and talk to this server, nothing else
const SECURITY_HEADERS = {
  "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

const LOOPBACK_NAMES = new Set(["127.0.0.1", "localhost", "::1", "[::1]"]);

/** The name in a Host header, without its port. */
function hostName(header: string | undefined): string {
  const h = (header ?? "").toLowerCase();
  return h.startsWith("[") ? h.slice(0, h.indexOf("]") + 1) : h.split(":")[0];
}

export async function startChatServer(opts: ChatServerOptions): Promise<ChatServer> {
  const served: ServedModel = { model: opts.model, name: opts.name, promptStyle: opts.promptStyle ?? "alpaca", queue: new RequestQueue() };
  const created = nowSeconds();
  const files = Object.fromEntries(Object.entries(STATIC).map(([url, f]) => [url, fs.readFileSync(path.join(PAGE_DIR, f.file))]));
  const info = {
    model: opts.name,
    engine: opts.engineLine,
    banner: opts.banner ?? null,
    promptStyle: served.promptStyle,
    contextLength: opts.model.cfg.contextLength,
    defaults: { temperature: 0, top_k: 0, max_tokens: BOOK_MAX_NEW_TOKENS },
  };
  const outcomes: ChatOutcome[] = [];
  const active = new Set<ActiveChat>();
  const running = new Set<Promise<unknown>>();
  let stopping = false;
  const port = opts.port ?? 8000;
  const host = opts.host ?? "127.0.0.1";
  const loopback = LOOPBACK_NAMES.has(host);

  const route = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? "/", "http://localhost").pathname;
    const method = req.method ?? "GET";
    if (loopback && !LOOPBACK_NAMES.has(hostName(req.headers.host))) {
      throw new ApiError(403, `Host "${req.headers.host ?? ""}" refused: this server answers on 127.0.0.1, localhost and [::1] only (--host 0.0.0.0 serves any name)`);
    }
    if (url === "/v1/chat/completions") {
      if (method !== "POST") throw new ApiError(405, `${method} ${url}: use POST`);
      if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
        throw new ApiError(415, `${method} ${url}: the body must be sent as JSON (Content-Type: application/json)`);
      }
      if (stopping) throw new ApiError(503, "the server is stopping", null, "server_stopping", "server_error");
      const outcome = await handleChatCompletion(req, res, served, active);
      outcomes.push(outcome);
      opts.log?.(`POST ${url} ${outcome.status}${outcome.stream ? " stream" : ""}: ${outcome.tokens} tokens in ${outcome.seconds.toFixed(1)} s${outcome.finish ? ` (${outcome.finish})` : ""}`);
      return;
    }
    if (method !== "GET" && method !== "HEAD") throw new ApiError(405, `${method} ${url}: only GET here`);
    const file = STATIC[url];
    if (file) {
      res.writeHead(200, { "Content-Type": file.type, "Cache-Control": "no-cache", ...SECURITY_HEADERS });
      res.end(method === "HEAD" ? undefined : files[url]);
      return;
    }
    if (url === "/info") return sendJson(res, 200, info);
    if (url === "/v1/models") return sendJson(res, 200, modelsBody(opts.name, created));
    if (url.startsWith("/v1/models/")) {
      const id = decodeURIComponent(url.slice("/v1/models/".length));
      if (id !== opts.name) throw new ApiError(404, `the model "${id}" is not served here; this server serves "${opts.name}"`, "model", "model_not_found");
      return sendJson(res, 200, (modelsBody(opts.name, created).data as unknown[])[0]);
    }
    throw new ApiError(404, `${method} ${url}: no such endpoint (the chat page is at /, the API at /v1/chat/completions and /v1/models)`);
  };

  const server = http.createServer({ noDelay: true }, (req, res) => {
    const work = route(req, res).catch((err: unknown) => {
      if (err instanceof ApiError) {
        if (!res.headersSent) sendJson(res, err.status, err.body());
        else res.end();
        return;
      }
      // a bug, not the client's doing: say so in one line and keep serving
      opts.log?.(`error: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) sendJson(res, 500, new ApiError(500, `internal error: ${(err as Error).message}`).body());
      else res.end();
    });
    running.add(work);
    work.finally(() => running.delete(work));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  const shownHost = host.includes(":") ? `[${host}]` : host === "0.0.0.0" ? "127.0.0.1" : host;
  return {
    url: `http://${shownHost}:${actual}`,
    port: actual,
    outcomes,
    get busy() {
      return served.queue.busy;
    },
    get waiting() {
      return served.queue.waitingCount;
    },
    async stop() {
      if (stopping) return;
      stopping = true;
      served.queue.close();
      for (const chat of active) chat.stop();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await Promise.allSettled([...running]); // the running generation ends at its next token
      server.closeAllConnections();
      await closed;
    },
  };
}
