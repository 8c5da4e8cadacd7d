/**
 * The scores file that `npm run judge` writes as it goes, one record per entry of the responses
 * file, rewritten atomically after every score so that a run stopped at any moment (Ctrl-C, a
 * crash, a judge that went away) leaves every score so far, and the next run continues from there.
 * Each record carries a key made from the entry's text, so an entry that changed is scored again.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { ConfigError, DataError } from "../core/errors";
import type { ResponseEntry } from "./judge-prompt";

export interface ScoreRecord {
  /** the entry's position in the responses file */
  index: number;
  /** a hash of the entry's instruction, input, output and response */
  key: string;
  /** 0-100, or null when the answer had no score in it (unscored, as in the book) */
  score: number | null;
  /** what the judge answered (or why nothing was asked) */
  answer: string;
}

export interface ScoresFile {
  /** what made the scores: "llm-judge", or an automatic metric such as "rouge-l" */
  method: string;
  responses: string;
  field: string;
  /** the judge's server, model and options (absent for a metric) */
  judge?: Record<string, unknown>;
  total: number;
  scores: ScoreRecord[];
}

/** Read a responses file: a JSON array of entries with instruction, input, output and `field` as strings. */
export function readResponses(file: string, field: string): ResponseEntry[] {
  let data: unknown;
  try {
    data = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DataError(`${file}: ${e.code === "ENOENT" ? "no such file" : `cannot be read as JSON (${e.message.split("\n")[0]})`}`);
  }
  if (!Array.isArray(data) || data.length === 0) throw new DataError(`${file}: expected a non-empty JSON array of entries with a "${field}" field`);
  data.forEach((entry: unknown, i: number) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new DataError(`${file}: entry ${i}: expected an object`);
    for (const name of ["instruction", "input", "output", field]) {
      const value = (entry as Record<string, unknown>)[name];
      if (typeof value !== "string") {
        const hint = name === field ? " (the field with the responses; choose another with --field)" : "";
        throw new DataError(`${file}: entry ${i}: field "${name}" ${value === undefined ? "is missing" : "must be a string"}${hint}`);
      }
    }
  });
  return data as ResponseEntry[];
}

/** The key of entry `entry`'s text: a changed entry gets a new key and is scored again. */
export function entryKey(entry: ResponseEntry, field: string): string {
  const text = JSON.stringify([entry.instruction, entry.input, entry.output, entry[field]]);
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * The records of an earlier run of the same kind that still match their entries, by index.
 * A file made with another method, judge model or field is refused: mixing them would average
 * two different scales.
 */
export function loadScores(file: string, expect: { method: string; field: string; model?: string }, entries: ResponseEntry[]): Map<number, ScoreRecord> {
  const kept = new Map<number, ScoreRecord>();
  if (!fs.existsSync(file)) return kept;
  let old: ScoresFile;
  try {
    old = JSON.parse(fs.readFileSync(file, "utf8")) as ScoresFile;
  } catch (err) {
    throw new DataError(`${file}: the scores file cannot be read as JSON (${(err as Error).message.split("\n")[0]}); move it away to start over`);
  }
  const oldModel = old.judge?.model;
  if (old.method !== expect.method || old.field !== expect.field || (expect.model !== undefined && oldModel !== expect.model)) {
    const was = `${old.method}${oldModel ? ` with ${String(oldModel)}` : ""} on "${old.field}"`;
    throw new ConfigError(`--out ${file}: holds scores made by ${was}; choose another --out or delete it to start over`);
  }
  for (const r of Array.isArray(old.scores) ? old.scores : []) {
    const entry = entries[r.index];
    if (entry !== undefined && r.key === entryKey(entry, expect.field)) kept.set(r.index, r);
  }
  return kept;
}

/** Write the scores file atomically (all of it, in entry order). */
export function saveScores(file: string, head: Omit<ScoresFile, "scores">, records: Map<number, ScoreRecord>): void {
  const scores = [...records.values()].sort((a, b) => a.index - b.index);
  const json = JSON.stringify({ ...head, scores }, null, 2) + "\n";
  writeFileAtomic(file, (fd) => writeAll(fd, json));
}

/** The book's two summary lines: how many entries got a score, and their mean with two decimals. */
export function summaryLines(records: Iterable<ScoreRecord>, total: number, label = "Average score"): string[] {
  const scores = [...records].flatMap((r) => (r.score === null ? [] : [r.score]));
  const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
  return [`Number of scores: ${scores.length} of ${total}`, `${label}: ${scores.length ? mean.toFixed(2) : "none (no entry was scored)"}`];
}
