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
import { Command } from "commander";
import { judgeResponses, rougeLRecords } from "../eval/score-responses";
import { readResponses, saveScores, summaryLines } from "../eval/scores";
import { progressDisplay, ProgressHandle } from "../display/progress";
import { runCli } from "./common";
import { ConfigError } from "../core/errors";
import { addLlmServerOptions, describeServer, llmServerClient, LlmServerOptions } from "./llm-server";

interface JudgeCliOptions extends LlmServerOptions {
  responses: string;
  field: string;
  out?: string;
  metric?: string;
}

const METRICS = ["rouge-l"];

async function main(): Promise<void> {
  const command = new Command("judge")
    .description("Score model responses 0-100 with an LLM judge served by Ollama (section 7.8), or with ROUGE-L (--metric)")
    .requiredOption("--responses <file>", "JSON array of entries with instruction, input, output and the response field")
    .option("--field <name>", "the field holding the response to score", "model_response")
    .option("--out <file>", "the scores file, written as it goes and continued when run again (default: <responses>-scores.json)")
    .option("--metric <name>", `score with an automatic metric instead of a judge: ${METRICS.join(", ")}`);
  const opts = addLlmServerOptions(command, "the judge model").parse().opts<JudgeCliOptions>();
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

  const client = llmServerClient(opts);
  console.error(`judge: ${describeServer(opts)} (seed ${opts.seed}, temperature ${opts.temperature})`);
  let bar: ProgressHandle | undefined;
  const bars = process.stderr.isTTY === true;
  const result = await judgeResponses(entries, client, {
    responsesFile: opts.responses,
    field: opts.field,
    out,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    log: (line) => (bar ? bar.log(line) : console.error(line)),
    onScore: (done) => {
      if (bars) (bar ??= progressDisplay(entries.length, "Scoring entries")).update(done);
    },
  });
  bar?.done();
  if (result.resumed > 0) console.error(`continued ${path.relative(".", out) || out}: ${result.resumed} of ${entries.length} entries were scored before`);
  for (const line of summaryLines(result.records.values(), entries.length)) console.log(line);
  console.error(`saved ${out}`);
}

if (require.main === module) runCli(main);
