/**
 * `npm run chat -- --weights DIR [--port 8000] [--host 127.0.0.1]`: talk to a fine-tuned model
 * (the book's ch07/06 user interface). Loads the model once and serves a chat page at
 * http://127.0.0.1:8000/ and an OpenAI-compatible API under /v1 (lib/serve/chat-server.ts), so any
 * OpenAI client, the course's own `npm run judge -- --api openai`, or curl can use it. Without
 * --weights it takes `--model` as `finetune` does (auto: GPT-2 medium when it can be had, else the
 * small random model, with its banner). Ctrl-C stops it cleanly.
 */
import * as path from "node:path";
import { Command } from "commander";
import { ConfigError } from "../core/errors";
import type { EngineChoice } from "../engine";
import { initEngine } from "../engine";
import { PROMPT_STYLES, PromptStyle } from "../data/prompt";
import { chooseModel } from "../pretrained/select";
import { ChatServer, startChatServer } from "../serve/chat-server";
import { parseBackend, parseIntOption, parsePromptStyle, runCli } from "./common";

interface ChatCliOptions {
  weights?: string;
  model: string;
  name?: string;
  port: number;
  host: string;
  promptStyle: PromptStyle;
  backend?: EngineChoice;
}

/** The id clients see: the folder's name, with its parent for finetune's `runs/<run>/model`. */
export function servedName(weights: string | undefined, chosen: string): string {
  if (weights === undefined) return chosen;
  const dir = path.resolve(weights);
  return path.basename(dir) === "model" ? `${path.basename(path.dirname(dir))}/model` : path.basename(dir);
}

async function main(): Promise<void> {
  const opts = new Command("chat")
    .description("Serve a (fine-tuned) GPT-2: a chat page at / and an OpenAI-compatible API at /v1 (chat completions, models)")
    .option("--weights <dir>", "a Hugging Face GPT-2 folder (config.json + model.safetensors), e.g. a finetune run's model/")
    .option("--model <name>", "without --weights: auto | gpt2-small | gpt2-medium | ... | tiny (as finetune)", "auto")
    .option("--name <id>", "the model's id in the API (default: the folder's name)")
    .option("--port <n>", "the port (0: any free one)", parseIntOption("port", 0), 8000)
    .option("--host <address>", "the address to listen on (0.0.0.0: every network interface; anyone who can reach it can use the model)", "127.0.0.1")
    .option("--prompt-style <name>", `prompt format the model was fine-tuned on: ${PROMPT_STYLES.join(" | ")}`, parsePromptStyle, "alpaca")
    .option("--backend <name>", "tensorflow | webgpu | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    .parse()
    .opts<ChatCliOptions>();
  if (opts.port > 65535) throw new ConfigError(`--port must be at most 65535, got ${opts.port}`);
  let engineLine = "";
  await initEngine({ backend: opts.backend, log: (line) => ((engineLine = line), console.log(line)) });
  const chosen = await chooseModel({ model: opts.model, weightsDir: opts.weights, log: (line) => console.log(line) });
  const name = opts.name ?? servedName(opts.weights, chosen.name);
  let server: ChatServer;
  try {
    server = await startChatServer({
      model: chosen.model, name, promptStyle: opts.promptStyle, engineLine, banner: chosen.banner,
      host: opts.host, port: opts.port, log: (line) => console.error(line),
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new ConfigError(`port ${opts.port} on ${opts.host} is in use (another chat server?): choose another with --port`);
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new ConfigError(`--host ${opts.host}: not an address of this machine`);
    if (code === "EACCES") throw new ConfigError(`port ${opts.port} needs special rights here: choose one above 1023 with --port`);
    throw err;
  }
  console.log(`serving ${name} (${chosen.source}; ${opts.promptStyle} prompts)`);
  console.log(`chat page: ${server.url}/`);
  console.log(`OpenAI-compatible API: ${server.url}/v1 (model "${name}"); e.g. npm run judge -- --api openai --host ${server.url} --model ${name} --responses FILE`);
  console.log("Ctrl-C stops");

  const stopped = new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) process.exit(130); // a second Ctrl-C: do not wait
      stopping = true;
      console.log(`\n${signal}: stopping (waiting requests are refused, the running one ends at its next token)`);
      void server.stop().then(resolve);
    };
    process.on("SIGINT", () => stop("SIGINT"));
    process.on("SIGTERM", () => stop("SIGTERM"));
  });
  await stopped;
  chosen.model.dispose();
  console.log("stopped");
}

if (require.main === module) runCli(main);
