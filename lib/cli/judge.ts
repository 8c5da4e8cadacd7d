/**
 * `npm run judge -- --responses FILE`: section 7.8. Scores every entry's response (the field
 * `model_response`, as the book's `instruction-data-with-response.json`) from 0 to 100 by asking
 * a larger model served by Ollama (Llama 3 8B, "llama3", in the book), then prints the book's two
 * lines: `Number of scores: N of M` and `Average score: X.XX`. Each score is saved at once in the
 * scores file; run the same command again after a stop and it continues where it was.
 *
 * Without a judge, `--metric rouge-l` scores the responses with ROUGE-L F1 against the reference
 * outputs instead: an automatic metric, clearly not the judge's score (see lib/eval/rouge.ts).
 */
import * as path from "path";
import { Command, Option } from "commander";
import { BOOK_JUDGE_MODEL, BOOK_JUDGE_OPTIONS, OLLAMA_DEFAULT_HOST } from "../core/book";
import { judgeClient, JUDGE_APIS, JudgeApi } from "../eval/judge-client";
import { judgeResponses, rougeLRecords } from "../eval/score-responses";
import { readResponses, saveScores, summaryLines } from "../eval/scores";
import { runProgress } from "../display/run-progress";
import { parseIntOption, parseNumberOption, runCli } from "./common";
import { ConfigError } from "../core/errors";

interface JudgeCliOptions {
  responses: string;
  field: string;
  api: JudgeApi;
  host: string;
  model: string;
  out?: string;
  metric?: string;
  seed: number;
  temperature: number;
  numCtx: number;
  stream: boolean;
  retries: number;
  retryDelayMs: number;
}

const METRICS = ["rouge-l"];

async function main(): Promise<void> {
  const opts = new Command("judge")
    .description("Score model responses 0-100 with an LLM judge served by Ollama (section 7.8), or with ROUGE-L (--metric)")
    .requiredOption("--responses <file>", "JSON array of entries with instruction, input, output and the response field")
    .option("--field <name>", "the field holding the response to score", "model_response")
    .option("--api <name>", `${JUDGE_APIS.join(" | ")}: Ollama's /api/chat, or an OpenAI-compatible /v1/chat/completions`, "ollama")
    .option("--host <url>", "the judge's server (default: $OLLAMA_HOST or http://localhost:11434)")
    .option("--model <name>", "the judge model on that server", BOOK_JUDGE_MODEL)
    .option("--out <file>", "the scores file, written as it goes and continued when run again (default: <responses>-scores.json)")
    .option("--metric <name>", `score with an automatic metric instead of a judge: ${METRICS.join(", ")}`)
    .option("--seed <n>", "the judge's sampling seed", parseIntOption("seed", 0), BOOK_JUDGE_OPTIONS.seed)
    .option("--temperature <x>", "the judge's temperature (0: deterministic)", parseNumberOption("temperature", 0), BOOK_JUDGE_OPTIONS.temperature)
    .option("--num-ctx <n>", "Ollama's context window in tokens", parseIntOption("num-ctx", 1), BOOK_JUDGE_OPTIONS.num_ctx)
    .option("--no-stream", "ask for each answer in one piece instead of streamed")
    .option("--retries <n>", "tries again after an answer is cut off", parseIntOption("retries", 0), 3)
    // tests only: no waiting between retries
    .addOption(new Option("--retry-delay-ms <n>").argParser(parseIntOption("retry-delay-ms", 0)).default(500).hideHelp())
    .parse()
    .opts<JudgeCliOptions>();
  if (!(JUDGE_APIS as readonly string[]).includes(opts.api)) throw new ConfigError(`--api must be one of ${JUDGE_APIS.join(", ")}, got "${opts.api}"`);
  if (opts.metric !== undefined && !METRICS.includes(opts.metric)) throw new ConfigError(`--metric must be one of ${METRICS.join(", ")}, got "${opts.metric}"`);

  const entries = readResponses(opts.responses, opts.field);
  const stem = opts.responses.replace(/\.json$/i, "");
  const out = opts.out ?? `${stem}-${opts.metric ?? "scores"}.json`;

  if (opts.metric !== undefined) {
    const records = rougeLRecords(entries, opts.field);
    saveScores(out, { method: opts.metric, responses: opts.responses, field: opts.field, total: entries.length }, records);
    console.log(`ROUGE-L F1 of "${opts.field}" against the reference outputs, 0-100: an automatic word-overlap metric, NOT the LLM judge's score`);
    for (const line of summaryLines(records.values(), entries.length, "Average ROUGE-L F1")) console.log(line);
    console.log(`saved ${out}`);
    return;
  }

  const host = opts.host || process.env.OLLAMA_HOST || OLLAMA_DEFAULT_HOST;
  const client = judgeClient({
    api: opts.api, host, model: opts.model, seed: opts.seed, temperature: opts.temperature, numCtx: opts.numCtx, stream: opts.stream,
  });
  console.error(`judge: ${opts.model} on ${opts.api === "ollama" ? "Ollama" : "an OpenAI-compatible server"} at ${host} (seed ${opts.seed}, temperature ${opts.temperature})`);
  const progress = runProgress("Scoring entries", { enabled: process.stderr.isTTY === true, log: (line) => console.error(line) });
  const result = await judgeResponses(entries, client, {
    responsesFile: opts.responses,
    field: opts.field,
    out,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    log: progress.log,
    onScore: (done) => progress.update(done, entries.length),
  });
  progress.done();
  if (result.resumed > 0) console.error(`continued ${path.relative(".", out) || out}: ${result.resumed} of ${entries.length} entries were scored before`);
  for (const line of summaryLines(result.records.values(), entries.length)) console.log(line);
  console.error(`saved ${out}`);
}

if (require.main === module) runCli(main);
