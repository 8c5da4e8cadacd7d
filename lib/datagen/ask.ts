/**
 * Asking the larger model for a piece of new data: the judge's client (lib/eval/judge-client.ts,
 * Ollama or an OpenAI-compatible server), with an answer that was cut off, or that came back
 * empty, asked again a few times before the run stops; and the files such a run writes as it
 * goes, atomically after every entry, so that a stop at any moment loses at most the entry in hand.
 */
import * as fs from "node:fs";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { DataError, JudgeError } from "../core/errors";
import { AskOptions, JudgeClient, StreamCutError } from "../eval/judge-client";

export interface RetryOptions {
  /** tries after a cut-off or empty answer (default 3) */
  retries?: number;
  /** wait before retry k: k times this many ms (default 500) */
  retryDelayMs?: number;
  /** lines to show (a retry) */
  log?: (line: string) => void;
}

export interface AskForOptions extends RetryOptions {
  /** return an empty answer instead of asking again (with a fixed seed, asking again gives the same) */
  allowEmpty?: boolean;
}

/** The model's answer, trimmed; retried when cut off (or empty, unless allowed), then a JudgeError that says what was asked (`what`). */
export async function askFor(client: JudgeClient, prompt: string, ask: AskOptions, what: string, opts: AskForOptions = {}): Promise<string> {
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    let why: string;
    try {
      const answer = (await client.ask(prompt, ask)).trim();
      if (answer !== "" || opts.allowEmpty) return answer;
      why = "an empty answer";
    } catch (err) {
      if (!(err instanceof StreamCutError)) throw err;
      why = `the answer was cut off (${err.message})`;
    }
    if (attempt >= retries) throw new JudgeError(`${what}: ${why}, ${attempt + 1} times`);
    opts.log?.(`${what}: ${why}; trying again (${attempt + 1} of ${retries})`);
    await new Promise((r) => setTimeout(r, (attempt + 1) * (opts.retryDelayMs ?? 500)));
  }
}

/** A JSON file written whole and atomically (4-space indents, as the book's json.dump(..., indent=4)). */
export function saveJson(file: string, value: unknown): void {
  writeFileAtomic(file, (fd) => writeAll(fd, JSON.stringify(value, null, 4) + "\n"));
}

/** The JSON array an earlier run left in `file`, or [] when there is none. */
export function readSavedArray(file: string, what: string): unknown[] {
  if (!fs.existsSync(file)) return [];
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new DataError(`${file}: the ${what} file of an earlier run cannot be read as JSON (${(err as Error).message.split("\n")[0]}); move it away to start over`);
  }
  if (!Array.isArray(data)) throw new DataError(`${file}: expected the JSON array of ${what} an earlier run writes; move it away to start over`);
  return data;
}

/** A JudgeError about the server, with where the work so far is and how to go on. */
export function withProgress(err: unknown, saved: number, total: number, file: string): unknown {
  if (!(err instanceof JudgeError) || saved === 0) return err;
  return new JudgeError(`${err.message}; ${saved} of ${total} entries are saved in ${file}: run the same command again to continue`);
}
