/**
 * `npm run make-preferences -- --data FILE --model llama3 [--out FILE]`: the book's ch07/04
 * `create-preference-data-ollama`. A larger model served by Ollama (or an OpenAI-compatible
 * server, `--api openai`) rewrites each entry's output a little more politely or impolitely
 * (seeded draw), giving each entry `chosen` and `rejected` answers for preference tuning
 * (lib/datagen/preferences.ts). Every entry is saved as it comes; run again, it continues.
 */
import * as path from "node:path";
import { Command } from "commander";
import { DEFAULT_DATA_FILE, loadInstructionData } from "../data/instruction-data";
import { makePreferences, Politeness } from "../datagen/preferences";
import { progressDisplay, ProgressHandle } from "../display/progress";
import { runCli } from "./common";
import { addLlmServerOptions, describeServer, llmServerClient, LlmServerOptions } from "./llm-server";

interface PreferencesCliOptions extends LlmServerOptions {
  data: string;
  out?: string;
  limit?: number;
}

async function main(): Promise<void> {
  const command = new Command("make-preferences")
    .description("Make preference data (chosen/rejected answers) with a larger model served by Ollama, as the book's ch07/04 create-preference-data-ollama")
    .option("--data <file>", "instruction data (JSON array of {instruction, input, output})", DEFAULT_DATA_FILE)
    .option("--out <file>", "the preference data, written as it goes and continued when run again (default: <data>-with-preference.json)");
  const opts = addLlmServerOptions(command, "the model that rewrites the answers").parse().opts<PreferencesCliOptions>();
  const entries = await loadInstructionData(opts.data, { download: false });
  const out = opts.out ?? `${opts.data.replace(/\.json$/i, "")}-with-preference.json`;
  const client = llmServerClient(opts);
  console.error(`make-preferences: ${describeServer(opts)} (seed ${opts.seed}, temperature ${opts.temperature}); ${entries.length} entries from ${opts.data}`);
  let bar: ProgressHandle | undefined;
  const bars = process.stderr.isTTY === true;
  const tones: Record<Politeness, number> = { polite: 0, impolite: 0 };
  const result = await makePreferences(entries, client, {
    out,
    seed: opts.seed,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    log: (line) => (bar ? bar.log(line) : console.error(line)),
    onEntry: (done, tone) => {
      tones[tone]++;
      if (bars) (bar ??= progressDisplay(entries.length, "Writing entries")).update(done);
    },
  });
  bar?.done();
  if (result.resumed > 0) console.error(`continued ${path.relative(".", out) || out}: ${result.resumed} of ${entries.length} entries were made before`);
  const made = result.entries.length - result.resumed;
  console.log(`${result.entries.length} entries with chosen and rejected answers in ${out} (this run: ${made}, ${tones.polite} rewritten more politely, ${tones.impolite} more impolitely)`);
}

if (require.main === module) runCli(main);
