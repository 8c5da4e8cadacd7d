/**
 * Section 7.8: every response scored by the judge, one entry after another, each score saved
 * as soon as it comes (scores.ts), continuing where an earlier run stopped.
 */
import { JudgeError } from "../core/errors";
import { JudgeClient, StreamCutError } from "./judge-client";
import { judgePrompt, parseScore, ResponseEntry } from "./judge-prompt";
import { rougeL } from "./rouge";
import { entryKey, loadScores, saveScores, ScoreRecord, ScoresFile } from "./scores";

export interface ScoreOptions {
  /** the responses file (named in the scores file and in messages) */
  responsesFile: string;
  /** the entries' field holding the response to score (the book: "model_response") */
  field: string;
  /** the scores file, written after every entry */
  out: string;
  /** tries after a cut-off answer before giving up (default 3) */
  retries?: number;
  /** wait before retry k: k times this many ms (default 500) */
  retryDelayMs?: number;
  /** after each new score: how many entries have a record now */
  onScore?: (done: number, record: ScoreRecord) => void;
  /** lines to show (an unscored answer, a retry) */
  log?: (line: string) => void;
}

export interface ScoreResult {
  records: Map<number, ScoreRecord>;
  total: number;
  /** how many records came from an earlier run */
  resumed: number;
}

/** Ask `client` to score every entry not scored yet; see the file comment. */
export async function judgeResponses(entries: ResponseEntry[], client: JudgeClient, opts: ScoreOptions): Promise<ScoreResult> {
  const { field, out } = opts;
  const retries = opts.retries ?? 3;
  const { api, host, model, seed, temperature, numCtx, stream } = client.settings;
  const head: Omit<ScoresFile, "scores"> = {
    method: "llm-judge",
    responses: opts.responsesFile,
    field,
    judge: { api, host, model, options: { seed, temperature, num_ctx: numCtx }, stream },
    total: entries.length,
  };
  const records = loadScores(out, { method: "llm-judge", field, model }, entries);
  const resumed = records.size;
  if (records.size < entries.length) await client.ready();
  for (const [index, entry] of entries.entries()) {
    if (records.has(index)) continue;
    const response = entry[field] as string;
    let record: ScoreRecord;
    if (response.trim() === "") {
      // nothing to judge: 0, without asking (as the book's ollama_evaluate.py)
      record = { index, key: entryKey(entry, field), score: 0, answer: "" };
    } else {
      const answer = await askWithRetries(client, judgePrompt(entry, response), index, retries, opts, records.size, entries.length);
      const parsed = parseScore(answer);
      if (parsed.score === null) opts.log?.(`entry ${index}: unscored (${parsed.reason}): ${JSON.stringify(answer.slice(0, 120))}`);
      record = { index, key: entryKey(entry, field), score: parsed.score, answer };
    }
    records.set(index, record);
    saveScores(out, head, records);
    opts.onScore?.(records.size, record);
  }
  return { records, total: entries.length, resumed };
}

async function askWithRetries(client: JudgeClient, prompt: string, index: number, retries: number, opts: ScoreOptions, saved: number, total: number): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await client.ask(prompt);
    } catch (err) {
      if (!(err instanceof StreamCutError)) throw err;
      if (attempt >= retries) {
        throw new JudgeError(
          `the judge's answer for entry ${index} was cut off ${attempt + 1} times (last: ${err.message}); ` +
            `${saved} of ${total} scores are saved in ${opts.out}: run the same command again to continue`,
        );
      }
      opts.log?.(`entry ${index}: the answer was cut off (${err.message}); trying again (${attempt + 1} of ${retries})`);
      await new Promise((r) => setTimeout(r, (attempt + 1) * (opts.retryDelayMs ?? 500)));
    }
  }
}

/** The automatic metric in place of a judge: ROUGE-L F1 against the reference output, on the 0-100 scale. */
export function rougeLRecords(entries: ResponseEntry[], field: string): Map<number, ScoreRecord> {
  const records = new Map<number, ScoreRecord>();
  entries.forEach((entry, index) => {
    const f1 = rougeL(entry[field] as string, entry.output).f1;
    records.set(index, { index, key: entryKey(entry, field), score: 100 * f1, answer: "" });
  });
  return records;
}
