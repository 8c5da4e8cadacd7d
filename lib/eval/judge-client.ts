/**
 * The judge's server: Ollama's own API through the official `ollama` library (the book's way:
 * `POST /api/chat`, streamed as JSON lines, each with a piece of `message.content`, the last with
 * `done: true`), or any OpenAI-compatible server (`/v1/chat/completions`: llama.cpp's
 * `llama-server`, LM Studio, vLLM, Ollama's own /v1) through the official `openai` library.
 *
 * Every failure a user can fix becomes one line that says how (a JudgeError); a stream that
 * breaks off is a `StreamCutError`, which the scoring loop retries.
 */
import { Ollama } from "ollama";
import OpenAI from "openai";
import { JudgeError } from "../core/errors";

export const JUDGE_APIS = ["ollama", "openai"] as const;
export type JudgeApi = (typeof JUDGE_APIS)[number];

export interface JudgeSettings {
  /** "ollama" (its /api/chat) or "openai" (an OpenAI-compatible /v1) */
  api: JudgeApi;
  /** the server, e.g. http://localhost:11434 */
  host: string;
  /** the judge model's name on that server, e.g. "llama3" */
  model: string;
  /** sampling seed: the same seed and settings give the same answer on the same machine */
  seed: number;
  /** 0: always the most likely token */
  temperature: number;
  /** Ollama's context window in tokens (num_ctx); an OpenAI-compatible server sets its own */
  numCtx: number;
  /** ask for the answer streamed (the book) or in one piece */
  stream: boolean;
}

/** Per-request changes to the settings (the data generators of lib/datagen/ use them). */
export interface AskOptions {
  /** the message's role (default "user"); ch07/05's instruction trick sends the chat template's user header as "assistant" */
  role?: "user" | "assistant";
  seed?: number;
  temperature?: number;
  /** nucleus sampling; default: the server's own */
  topP?: number;
}

export interface JudgeClient {
  readonly settings: JudgeSettings;
  /** Check that the server answers and has the model; a JudgeError saying what to do if not. */
  ready(): Promise<void>;
  /** The judge's whole answer to one prompt. */
  ask(prompt: string, opts?: AskOptions): Promise<string>;
}

/** The answer stream stopped before its end (a dropped connection, a server that died): worth a retry. */
export class StreamCutError extends Error {}

/** The error codes of a request that never reached a server (in err.cause, as Node's fetch reports them). */
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EAI_AGAIN", "EHOSTUNREACH", "ENETUNREACH"]);

function causeCode(err: unknown): string | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, i = 0; e && i < 5; e = e.cause as typeof e, i++) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

const oneLine = (s: string) => s.replace(/\s+/g, " ").trim().slice(0, 300);

export function ollamaJudge(settings: JudgeSettings): JudgeClient {
  const { host, model } = settings;
  const client = new Ollama({ host });
  const fail = (err: unknown, what: string): Error => {
    const status = (err as { status_code?: number }).status_code;
    const message = oneLine((err as Error).message ?? String(err));
    if (status === 404) return new JudgeError(`the model "${model}" is not pulled on the Ollama at ${host} (${message}): run \`ollama pull ${model}\`, or choose another with --model`);
    if (status !== undefined) return new JudgeError(`the Ollama at ${host} answered ${what} with HTTP ${status}: ${message}`);
    const code = causeCode(err);
    if (code !== undefined && UNREACHABLE.has(code)) {
      return new JudgeError(`cannot reach Ollama at ${host} (${code}): start it with \`ollama serve\` (or open the Ollama app), or give its address with --host or OLLAMA_HOST`);
    }
    return new StreamCutError(`${message}${code ? ` (${code})` : ""}`);
  };
  return {
    settings,
    async ready() {
      let names: string[];
      try {
        names = (await client.list()).models.flatMap((m) => [m.name, m.model]);
      } catch (err) {
        const e = fail(err, "GET /api/tags");
        throw e instanceof JudgeError ? e : new JudgeError(`the Ollama at ${host} did not list its models (GET /api/tags: ${e.message})`);
      }
      // a name without a tag means ":latest"
      if (!names.includes(model) && !names.includes(`${model}:latest`)) {
        const have = names.length ? `it has ${[...new Set(names)].slice(0, 6).join(", ")}` : "it has no models yet";
        throw new JudgeError(`the model "${model}" is not pulled on the Ollama at ${host} (${have}): run \`ollama pull ${model}\`, or choose another with --model`);
      }
    },
    async ask(prompt, opts = {}) {
      const request = {
        model,
        messages: [{ role: opts.role ?? "user", content: prompt }],
        options: {
          seed: opts.seed ?? settings.seed, temperature: opts.temperature ?? settings.temperature, num_ctx: settings.numCtx,
          ...(opts.topP !== undefined ? { top_p: opts.topP } : {}),
        },
      };
      try {
        if (!settings.stream) return (await client.chat({ ...request, stream: false })).message.content;
        let text = "";
        // the library ends the loop at the `done: true` line and throws if the stream ends without one
        for await (const part of await client.chat({ ...request, stream: true })) text += part.message.content;
        return text;
      } catch (err) {
        throw fail(err, "POST /api/chat");
      }
    },
  };
}

/** The OpenAI-compatible address: the host with /v1 (added when missing). */
export const openaiBaseUrl = (host: string): string => (/\/v1\/?$/.test(host) ? host.replace(/\/$/, "") : `${host.replace(/\/$/, "")}/v1`);

export function openaiJudge(settings: JudgeSettings): JudgeClient {
  const { model } = settings;
  const baseURL = openaiBaseUrl(settings.host);
  // local servers want no key; a hosted one reads OPENAI_API_KEY. maxRetries 0: the scoring loop retries.
  const client = new OpenAI({ baseURL, apiKey: process.env.OPENAI_API_KEY ?? "no-key", maxRetries: 0 });
  const fail = (err: unknown, what: string): Error => {
    const code = causeCode(err);
    if (err instanceof OpenAI.APIConnectionError && code !== undefined && UNREACHABLE.has(code)) {
      return new JudgeError(`cannot reach the OpenAI-compatible server at ${baseURL} (${code}): start it (llama.cpp: \`llama-server -m MODEL.gguf\`; LM Studio: its local server), or give its address with --host`);
    }
    if (err instanceof OpenAI.NotFoundError) return new JudgeError(`the server at ${baseURL} has no model "${model}" (${oneLine(err.message)}): choose one it serves with --model`);
    if (err instanceof OpenAI.APIError && err.status !== undefined) return new JudgeError(`the server at ${baseURL} answered ${what} with HTTP ${err.status}: ${oneLine(err.message)}`);
    return new StreamCutError(`${oneLine((err as Error).message ?? String(err))}${code ? ` (${code})` : ""}`);
  };
  return {
    settings,
    async ready() {
      let ids: string[];
      try {
        ids = (await client.models.list()).data.map((m) => m.id);
      } catch (err) {
        const e = fail(err, "GET /v1/models");
        throw e instanceof JudgeError ? e : new JudgeError(`the server at ${baseURL} did not list its models (GET /v1/models: ${e.message})`);
      }
      if (ids.length > 0 && !ids.includes(model)) {
        throw new JudgeError(`the server at ${baseURL} does not serve "${model}" (it serves ${ids.slice(0, 6).join(", ")}): choose one with --model`);
      }
    },
    async ask(prompt, opts = {}) {
      const request = {
        model, messages: [{ role: opts.role ?? "user", content: prompt }], temperature: opts.temperature ?? settings.temperature, seed: opts.seed ?? settings.seed,
        ...(opts.topP !== undefined ? { top_p: opts.topP } : {}),
      };
      try {
        if (!settings.stream) return (await client.chat.completions.create({ ...request, stream: false })).choices[0]?.message?.content ?? "";
        let text = "";
        let finished = false;
        for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) {
          text += chunk.choices[0]?.delta?.content ?? "";
          finished ||= chunk.choices[0]?.finish_reason != null;
        }
        // a stream that stops without a finish_reason was cut, not finished
        if (!finished) throw new StreamCutError("the stream ended without a finish_reason");
        return text;
      } catch (err) {
        throw err instanceof StreamCutError ? err : fail(err, "POST /v1/chat/completions");
      }
    },
  };
}

export function judgeClient(settings: JudgeSettings): JudgeClient {
  return settings.api === "openai" ? openaiJudge(settings) : ollamaJudge(settings);
}
