/**
 * `npm run make-instructions -- --count N --model llama3 [--out FILE]`: the book's ch07/05
 * `llama3-ollama`. Llama 3, served by Ollama (or an OpenAI-compatible server, `--api openai`),
 * writes instructions from nothing but its chat template's user header, then answers them; each
 * pair is checked and kept only if it is not a near-duplicate of one kept before
 * (lib/datagen/instructions.ts). Every entry is saved as it comes; run again, it continues.
 */
import * as path from "node:path";
import { Command } from "commander";
import { ConfigError } from "../core/errors";
import { NEAR_DUPLICATE_THRESHOLD } from "../data/near-duplicates";
import { makeInstructions, progressFile } from "../datagen/instructions";
import { progressDisplay, ProgressHandle } from "../display/progress";
import { parseIntOption, runCli } from "./common";
import { addLlmServerOptions, describeServer, llmServerClient, LlmServerOptions } from "./llm-server";

interface InstructionsCliOptions extends LlmServerOptions {
  count: number;
  out?: string;
  threshold: number;
  maxTries?: number;
}

const parseThreshold = (value: string): number => {
  const x = Number(value);
  if (value.trim() === "" || !(x >= 0 && x <= 1)) throw new ConfigError(`--threshold must be a number from 0 to 1, got "${value}"`);
  return x;
};

async function main(): Promise<void> {
  const command = new Command("make-instructions")
    .description("Make new instruction data with Llama 3 served by Ollama (the Magpie trick of the book's ch07/05 llama3-ollama), checked and without near-duplicates")
    .requiredOption("--count <n>", "how many entries to make", parseIntOption("count", 1))
    .option("--out <file>", "the instruction data, written as it goes and continued when run again (default: instruction-data-<model>.json)")
    .option("--threshold <x>", "an entry whose instruction or answer is this similar to a kept one is dropped (the near-duplicate finder's)", parseThreshold, NEAR_DUPLICATE_THRESHOLD)
    .option("--max-tries <n>", "give up after this many tries in all (default: 4 x --count)", parseIntOption("max-tries", 1));
  const opts = addLlmServerOptions(command, "the Llama 3 model", { temperature: 1 }).parse().opts<InstructionsCliOptions>();
  const out = opts.out ?? `instruction-data-${opts.model.replace(/[^\w.-]+/g, "-")}.json`;
  const client = llmServerClient(opts);
  console.error(`make-instructions: ${describeServer(opts)} (seed ${opts.seed} + try, temperature ${opts.temperature}); ${opts.count} entries into ${out}`);
  let bar: ProgressHandle | undefined;
  const bars = process.stderr.isTTY === true;
  const log = (line: string) => (bar ? bar.log(line) : console.error(line));
  const result = await makeInstructions(client, {
    count: opts.count, out, seed: opts.seed, temperature: opts.temperature, threshold: opts.threshold, maxTries: opts.maxTries,
    retries: opts.retries, retryDelayMs: opts.retryDelayMs, log,
    onTry: (kept, outcome) => {
      if (outcome !== "kept") log(`${outcome}`);
      if (bars) (bar ??= progressDisplay(opts.count, "Making entries")).update(kept);
    },
  });
  bar?.done();
  if (result.resumed > 0) console.error(`continued ${path.relative(".", out) || out}: ${result.resumed} entries were made before`);
  console.log(`${result.entries.length} entries in ${out} after ${result.tries} tries (the tries and what was rejected: ${progressFile(out)})`);
}

if (require.main === module) runCli(main);
