/**
 * The OpenAI chat completions protocol, as much of it as a GPT-2 fine-tuned on single
 * instructions can honour: `POST /v1/chat/completions` (whole, or streamed as server-sent events
 * of `chat.completion.chunk` objects ending with `data: [DONE]`) and `GET /v1/models`, in the
 * shapes the official `openai` clients read.
 *
 * The model answers one instruction, so the last user message is the instruction (the book's
 * app.py does the same with the chat box's message); earlier messages are accepted and not used.
 * Settings the book's generation does not have (top_p below 1, n above 1, stop sequences,
 * penalties, log-probabilities, tools) are refused with a 400 that says so, rather than ignored.
 */
import { randomBytes } from "node:crypto";
import { BOOK_MAX_NEW_TOKENS, BOOK_SEED } from "../core/book";

/** A request the server refuses: its HTTP status and OpenAI's error object. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status === 404 ? "not_found_error" : status >= 500 ? "server_error" : "invalid_request_error",
  ) {
    super(message);
  }

  /** OpenAI's error body, on one line. */
  body(): string {
    return JSON.stringify({ error: { message: this.message, type: this.type, param: this.param, code: this.code } }) + "\n";
  }
}

/** A chat request, checked: what generation needs. */
export interface ChatRequest {
  /** the last user message: the instruction */
  instruction: string;
  /** the model asked for (absent: the one served) */
  model?: string;
  maxTokens: number;
  temperature: number;
  /** sample among the k most likely tokens only (absent or 0: all) */
  topK?: number;
  seed: number;
  stream: boolean;
  /** send a last chunk with the token counts (stream_options.include_usage) */
  includeUsage: boolean;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const typeOf = (v: unknown) => (v === null ? "null" : Array.isArray(v) ? "array" : typeof v);

/** A message's text: a string, or an array of {type: "text", text} parts (other parts refused). */
function messageText(content: unknown, param: string): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part, k) => {
        if (isObject(part) && part.type === "text" && typeof part.text === "string") return part.text;
        throw new ApiError(400, `${param}[${k}]: only text parts are supported (got ${isObject(part) ? `type ${JSON.stringify(part.type)}` : typeOf(part)})`, param);
      })
      .join("");
  }
  throw new ApiError(400, `${param}: expected a string or an array of text parts, got ${typeOf(content)}`, param);
}

function optionalNumber(body: Json, name: string, check: (x: number) => boolean, rule: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || !check(v)) throw new ApiError(400, `${name}: expected ${rule}, got ${JSON.stringify(v)}`, name);
  return v;
}

/** Settings the book's generation does not have: refused unless they ask for what it does anyway. */
const UNSUPPORTED: [string, (v: unknown) => boolean, string][] = [
  ["n", (v) => v === 1, "only one choice (n: 1) is generated"],
  ["top_p", (v) => v === 1, "nucleus sampling (top_p) is not part of the book's generation; use top_k"],
  ["stop", (v) => v === null || (Array.isArray(v) && v.length === 0), "stop sequences are not supported (generation stops at <|endoftext|> or max_tokens)"],
  ["presence_penalty", (v) => v === 0, "penalties are not supported"],
  ["frequency_penalty", (v) => v === 0, "penalties are not supported"],
  ["logit_bias", (v) => v === null, "logit_bias is not supported"],
  ["logprobs", (v) => v === false || v === null, "log-probabilities are not returned"],
  ["tools", (v) => v === null || (Array.isArray(v) && v.length === 0), "this model has no tools"],
  ["response_format", (v) => v === null || (isObject(v) && v.type === "text"), "only plain text answers are supported"],
];

/** Check a request body (already parsed JSON); an ApiError naming the first thing wrong. */
export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) throw new ApiError(400, `the body must be a JSON object, got ${typeOf(body)}`);
  if (body.model !== undefined && typeof body.model !== "string") throw new ApiError(400, `model: expected a string, got ${typeOf(body.model)}`, "model");
  const messages = body.messages;
  if (messages === undefined) throw new ApiError(400, "messages: missing (an array of {role, content}, the last user message being the instruction)", "messages");
  if (!Array.isArray(messages) || messages.length === 0) throw new ApiError(400, `messages: expected a non-empty array, got ${Array.isArray(messages) ? "an empty array" : typeOf(messages)}`, "messages");
  let instruction: string | undefined;
  messages.forEach((m, k) => {
    const param = `messages[${k}]`;
    if (!isObject(m)) throw new ApiError(400, `${param}: expected an object with role and content, got ${typeOf(m)}`, param);
    if (typeof m.role !== "string") throw new ApiError(400, `${param}.role: expected a string, got ${typeOf(m.role)}`, `${param}.role`);
    if (m.content === undefined || m.content === null) {
      if (m.role === "user") throw new ApiError(400, `${param}.content: missing`, `${param}.content`);
      return;
    }
    const text = messageText(m.content, `${param}.content`);
    if (m.role === "user") instruction = text;
  });
  if (instruction === undefined) throw new ApiError(400, "messages: no message with role \"user\" (its content is the instruction)", "messages");
  if (instruction.trim() === "") throw new ApiError(400, "messages: the last user message is empty", "messages");
  for (const [name, ok, why] of UNSUPPORTED) {
    if (body[name] !== undefined && !ok(body[name])) throw new ApiError(400, `${name}: ${why}`, name);
  }
  const maxTokens = optionalNumber(body, "max_completion_tokens", (x) => Number.isInteger(x) && x >= 1, "an integer >= 1")
    ?? optionalNumber(body, "max_tokens", (x) => Number.isInteger(x) && x >= 1, "an integer >= 1")
    ?? BOOK_MAX_NEW_TOKENS;
  const temperature = optionalNumber(body, "temperature", (x) => x >= 0 && x <= 2, "a number from 0 to 2") ?? 0;
  const topK = optionalNumber(body, "top_k", (x) => Number.isInteger(x) && x >= 0, "an integer >= 0 (0: no limit)");
  const seed = optionalNumber(body, "seed", Number.isInteger, "an integer") ?? BOOK_SEED;
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") throw new ApiError(400, `stream: expected true or false, got ${typeOf(body.stream)}`, "stream");
  const options = body.stream_options;
  if (options !== undefined && options !== null && !isObject(options)) throw new ApiError(400, `stream_options: expected an object, got ${typeOf(options)}`, "stream_options");
  return {
    instruction,
    model: body.model as string | undefined,
    maxTokens,
    temperature,
    topK: topK === 0 ? undefined : topK,
    seed,
    stream: body.stream === true,
    includeUsage: isObject(options) && options.include_usage === true,
  };
}

/** A new completion id, as OpenAI's ("chatcmpl-" and random letters). */
export const completionId = (): string => `chatcmpl-${randomBytes(12).toString("hex")}`;

/** `created`: seconds since 1970. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);

export type FinishReason = "stop" | "length";

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export const usage = (prompt: number, completion: number): Usage => ({ prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion });

/** The whole answer: a `chat.completion` object. */
export function completionBody(id: string, created: number, model: string, content: string, finish: FinishReason, use: Usage): Json {
  return {
    id, object: "chat.completion", created, model,
    choices: [{ index: 0, message: { role: "assistant", content, refusal: null }, logprobs: null, finish_reason: finish }],
    usage: use,
  };
}

/** One streamed piece: a `chat.completion.chunk` object. */
export function chunkBody(id: string, created: number, model: string, delta: Json, finish: FinishReason | null = null): Json {
  return { id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] };
}

/** The last chunk when usage was asked for: no choices, the token counts. */
export function usageChunkBody(id: string, created: number, model: string, use: Usage): Json {
  return { id, object: "chat.completion.chunk", created, model, choices: [], usage: use };
}

/** `GET /v1/models`: the one model served. */
export function modelsBody(model: string, created: number): Json {
  return { object: "list", data: [{ id: model, object: "model", created, owned_by: "course" }] };
}

/** One server-sent event carrying JSON. */
export const sseData = (value: unknown): string => `data: ${JSON.stringify(value)}\n\n`;

/** A server-sent comment line: clients skip it (the chat page reads it for the waiting notice). */
export const sseComment = (text: string): string => `: ${text.replace(/\n/g, " ")}\n\n`;
