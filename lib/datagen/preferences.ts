/**
 * Preference data for preference fine-tuning (DPO), as the book's ch07/04
 * `create-preference-data-ollama` makes it: for every entry a larger model rewrites the expected
 * output to be a little more polite or a little more impolite (which one is drawn, seeded, per
 * entry); the polite version is `chosen` and the dataset's output `rejected`, or the impolite one
 * is `rejected` and the output `chosen`. The entry keeps its fields and gains the two, written in
 * that order as the book writes them.
 *
 * The output file is rewritten atomically after every entry and holds the entries done so far,
 * in order; run again, the command continues after the last one (the draws come from one seeded
 * stream over all entries, so entry i gets the same draw in a continued run).
 */
import { ConfigError } from "../core/errors";
import { Rng } from "../core/random";
import { formatInput } from "../data/prompt";
import type { InstructionEntry } from "../data/instruction-data";
import type { JudgeClient } from "../eval/judge-client";
import { askFor, readSavedArray, RetryOptions, saveJson, withProgress } from "./ask";

export type Politeness = "polite" | "impolite";

export type PreferenceEntry = InstructionEntry & { chosen: string; rejected: string };

/** What the larger model is asked: the task, its correct answer, and a small change of tone (the book's idea, our words). */
export function preferencePrompt(entry: InstructionEntry, politeness: Politeness): string {
  return (
    "Here is a task and its correct answer.\n\n" +
    `Task:\n${formatInput(entry)}\n\n` +
    `Correct answer:\n${entry.output}\n\n` +
    `Rewrite the answer so that it sounds a little more ${politeness}, changing as little as possible and keeping it correct. ` +
    "Reply with the rewritten answer only, nothing else."
  );
}

/** One draw per entry from one seeded stream: entry i's tone does not depend on where a run started. */
export function politenessDraws(count: number, seed: number): Politeness[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, () => (rng.next() < 0.5 ? "polite" : "impolite"));
}

/** The entry with chosen and rejected, as the book assigns and orders them. */
export function preferenceEntry(entry: InstructionEntry, politeness: Politeness, rewritten: string): PreferenceEntry {
  return politeness === "polite"
    ? { ...entry, chosen: rewritten, rejected: entry.output }
    : { ...entry, rejected: rewritten, chosen: entry.output };
}

export interface PreferenceOptions extends RetryOptions {
  /** the output file, rewritten after every entry */
  out: string;
  /** seeds the polite/impolite draws (default: the book's 123) */
  seed: number;
  /** after each entry: how many are done */
  onEntry?: (done: number, politeness: Politeness) => void;
}

/** The entries an earlier run saved: they must be the first entries of this data, each with chosen and rejected. */
function continued(entries: InstructionEntry[], out: string): PreferenceEntry[] {
  const saved = readSavedArray(out, "preference entries");
  if (saved.length > entries.length) throw new ConfigError(`--out ${out}: holds ${saved.length} entries, more than the ${entries.length} of the data; choose another --out or delete it`);
  saved.forEach((s, i) => {
    const e = s as Partial<PreferenceEntry>;
    const same = e && e.instruction === entries[i].instruction && e.input === entries[i].input && e.output === entries[i].output;
    if (!same) throw new ConfigError(`--out ${out}: its entry ${i} is not entry ${i} of the data (another data file?); choose another --out or delete it`);
    if (typeof e.chosen !== "string" || typeof e.rejected !== "string") throw new ConfigError(`--out ${out}: its entry ${i} has no chosen/rejected texts; delete the file to start over`);
  });
  return saved as PreferenceEntry[];
}

/** Make the preference data; returns every entry and how many came from an earlier run. */
export async function makePreferences(entries: InstructionEntry[], client: JudgeClient, opts: PreferenceOptions): Promise<{ entries: PreferenceEntry[]; resumed: number }> {
  const done = continued(entries, opts.out);
  const resumed = done.length;
  const draws = politenessDraws(entries.length, opts.seed);
  if (done.length < entries.length) await client.ready();
  try {
    for (let i = done.length; i < entries.length; i++) {
      const rewritten = await askFor(client, preferencePrompt(entries[i], draws[i]), {}, `entry ${i}`, opts);
      done.push(preferenceEntry(entries[i], draws[i], rewritten));
      saveJson(opts.out, done);
      opts.onEntry?.(done.length, draws[i]);
    }
  } catch (err) {
    throw withProgress(err, done.length, entries.length, opts.out);
  }
  return { entries: done, resumed };
}
