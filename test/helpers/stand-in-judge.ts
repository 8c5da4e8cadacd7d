// A stand-in judge server on 127.0.0.1 for the judge's tests. It speaks Ollama's documented API
// (docs/api.md of ollama/ollama) as the real server does:
//   GET  /api/tags  -> {"models":[{"name":"llama3:latest","model":"llama3:latest",...}]}
//   POST /api/chat  -> streamed (the default): application/x-ndjson, one JSON object per line,
//                      {"model","created_at","message":{"role":"assistant","content":<piece>},"done":false},
//                      then a last line with "done":true, "done_reason":"stop" and the timings;
//                      with "stream": false: one application/json object with the whole message and "done":true;
//                      a model it does not have: HTTP 404 {"error":"model \"llama3\" not found, try pulling it first"}
// and the OpenAI-compatible one (GET /v1/models, POST /v1/chat/completions, streamed as
// server-sent events ending with "data: [DONE]"). What the judge answers is the test's to choose,
// and every request body is kept for the test to check.
import * as http from "node:http";
import type { AddressInfo } from "node:net";

export interface ChatRequest {
  path: string;
  body: { model: string; messages: { role: string; content: string }[]; stream?: boolean; options?: Record<string, unknown>; [k: string]: unknown };
}

/** What to do with one chat request: answer a text (split into streamed pieces), or break off. */
export type Reply = string | { cutAfter: string; how: "destroy" | "end" } | { status: number; error: string };

export interface StandIn {
  url: string;
  requests: ChatRequest[];
  /** the answers given, in order (text replies only) */
  answers: string[];
  close(): Promise<void>;
}

const now = () => new Date().toISOString();

/** Pieces of an answer as a model streams them: a few characters at a time. */
function pieces(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; i += 3) out.push(text.slice(i, i + 3));
  return out.length ? out : [""];
}

export async function startStandIn(opts: { models?: string[]; reply: (req: ChatRequest, n: number) => Reply }): Promise<StandIn> {
  const models = opts.models ?? ["llama3:latest"];
  const requests: ChatRequest[] = [];
  const answers: string[] = [];
  const has = (name: string) => models.includes(name) || models.includes(`${name}:latest`);
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { "Content-Type": "application/json; charset=utf-8" });
        res.end(JSON.stringify(value));
      };
      if (req.method === "GET" && req.url === "/api/tags") {
        return json(200, {
          models: models.map((name) => ({
            name, model: name, modified_at: "2024-05-20T10:00:00Z", size: 4661224676, digest: "365c0bd3c000a25d28ddbf732fe1c6add414de7275464c4e4d1c3b5fcb5d8ad1",
            details: { parent_model: "", format: "gguf", family: "llama", families: ["llama"], parameter_size: "8.0B", quantization_level: "Q4_0" },
          })),
        });
      }
      if (req.method === "GET" && req.url === "/v1/models") {
        return json(200, { object: "list", data: models.map((id) => ({ id, object: "model", created: 1716200000, owned_by: "library" })) });
      }
      const isOllama = req.method === "POST" && req.url === "/api/chat";
      const isOpenai = req.method === "POST" && req.url === "/v1/chat/completions";
      if (!isOllama && !isOpenai) return json(404, { error: "404 page not found" });
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ChatRequest["body"];
      requests.push({ path: req.url as string, body });
      if (!has(body.model)) {
        const message = `model "${body.model}" not found, try pulling it first`;
        return json(404, isOllama ? { error: message } : { error: { message, type: "api_error", param: null, code: null } });
      }
      const reply = opts.reply(requests[requests.length - 1], requests.length - 1);
      if (typeof reply === "object" && "status" in reply) return json(reply.status, { error: reply.error });
      const text = typeof reply === "string" ? reply : reply.cutAfter;
      if (typeof reply === "string") answers.push(reply);
      const streamed = isOllama ? body.stream !== false : body.stream === true;
      if (!streamed) {
        if (typeof reply !== "string") return res.socket?.destroy(); // a one-piece answer cut off: the connection drops
        return json(200, isOllama
          ? { model: body.model, created_at: now(), message: { role: "assistant", content: text }, done_reason: "stop", done: true, total_duration: 5191566416, load_duration: 2154458, prompt_eval_count: 26, prompt_eval_duration: 383809000, eval_count: 2, eval_duration: 4799921000 }
          : { id: "chatcmpl-1", object: "chat.completion", created: 1716200000, model: body.model, choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: "stop" }], usage: { prompt_tokens: 26, completion_tokens: 2, total_tokens: 28 } });
      }
      res.writeHead(200, { "Content-Type": isOllama ? "application/x-ndjson" : "text/event-stream" });
      const line = (value: unknown) => res.write(isOllama ? JSON.stringify(value) + "\n" : `data: ${JSON.stringify(value)}\n\n`);
      for (const piece of pieces(text)) {
        line(isOllama
          ? { model: body.model, created_at: now(), message: { role: "assistant", content: piece }, done: false }
          : { id: "chatcmpl-1", object: "chat.completion.chunk", created: 1716200000, model: body.model, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] });
      }
      if (typeof reply !== "string") {
        // the stream breaks off before its last line: the socket dies, or the body ends early
        if (reply.how === "destroy") return setTimeout(() => res.socket?.destroy(), 10);
        return res.end();
      }
      if (isOllama) {
        line({ model: body.model, created_at: now(), message: { role: "assistant", content: "" }, done_reason: "stop", done: true, total_duration: 4883583458, load_duration: 1334875, prompt_eval_count: 26, prompt_eval_duration: 342546000, eval_count: 2, eval_duration: 4535599000 });
        return res.end();
      }
      line({ id: "chatcmpl-1", object: "chat.completion.chunk", created: 1716200000, model: body.model, choices: [{ index: 0, delta: {}, finish_reason: "stop" }] });
      res.end("data: [DONE]\n\n");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    answers,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A port on 127.0.0.1 where nothing listens (taken, then given back). */
export async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
