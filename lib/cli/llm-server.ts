/**
 * The options of every command that asks a larger model served by Ollama or an OpenAI-compatible
 * server (judge, make-preferences, make-instructions): which API, where (`--host`, else
 * $OLLAMA_HOST, else Ollama's default address), which model, the sampling settings, streaming,
 * and how often to retry an answer that was cut off.
 */
import { Command, Option } from "commander";
import { BOOK_JUDGE_MODEL, BOOK_JUDGE_OPTIONS, OLLAMA_DEFAULT_HOST } from "../core/book";
import { ConfigError } from "../core/errors";
import { JUDGE_APIS, JudgeApi, judgeClient, JudgeClient } from "../eval/judge-client";
import { parseIntOption, parseNumberOption } from "./common";

export interface LlmServerOptions {
  api: JudgeApi;
  host?: string;
  model: string;
  seed: number;
  temperature: number;
  numCtx: number;
  stream: boolean;
  retries: number;
  retryDelayMs: number;
}

/** Add the server options to `command`; `what` names the model's role in the help ("the judge model"). */
export function addLlmServerOptions(command: Command, what: string, defaults: { temperature: number } = { temperature: BOOK_JUDGE_OPTIONS.temperature }): Command {
  return command
    .option("--api <name>", `${JUDGE_APIS.join(" | ")}: Ollama's /api/chat, or an OpenAI-compatible /v1/chat/completions`, "ollama")
    .option("--host <url>", `the server (default: $OLLAMA_HOST or ${OLLAMA_DEFAULT_HOST})`)
    .option("--model <name>", `${what} on that server`, BOOK_JUDGE_MODEL)
    .option("--seed <n>", "the sampling seed", parseIntOption("seed", 0), BOOK_JUDGE_OPTIONS.seed)
    .option("--temperature <x>", "the sampling temperature (0: deterministic)", parseNumberOption("temperature", 0), defaults.temperature)
    .option("--num-ctx <n>", "Ollama's context window in tokens", parseIntOption("num-ctx", 1), BOOK_JUDGE_OPTIONS.num_ctx)
    .option("--no-stream", "ask for each answer in one piece instead of streamed")
    .option("--retries <n>", "tries again after an answer is cut off", parseIntOption("retries", 0), 3)
    // tests only: no waiting between retries
    .addOption(new Option("--retry-delay-ms <n>").argParser(parseIntOption("retry-delay-ms", 0)).default(500).hideHelp());
}

/** The host the options point at: --host, else $OLLAMA_HOST, else Ollama's default. */
export const serverHost = (opts: LlmServerOptions): string => opts.host || process.env.OLLAMA_HOST || OLLAMA_DEFAULT_HOST;

/** The client for the options (a ConfigError for an unknown --api). */
export function llmServerClient(opts: LlmServerOptions): JudgeClient {
  if (!(JUDGE_APIS as readonly string[]).includes(opts.api)) throw new ConfigError(`--api must be one of ${JUDGE_APIS.join(", ")}, got "${opts.api}"`);
  return judgeClient({
    api: opts.api, host: serverHost(opts), model: opts.model, seed: opts.seed, temperature: opts.temperature, numCtx: opts.numCtx, stream: opts.stream,
  });
}

/** "llama3 on Ollama at http://localhost:11434", for the first line a command prints. */
export const describeServer = (opts: LlmServerOptions): string =>
  `${opts.model} on ${opts.api === "ollama" ? "Ollama" : "an OpenAI-compatible server"} at ${serverHost(opts)}`;
