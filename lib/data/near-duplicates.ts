/**
 * Near-duplicates in an instruction dataset, as the book's `find-near-duplicates.py` (ch07/02)
 * finds them: for every field of the entries (the keys of the first entry, in order), the texts
 * are lowercased and stripped of punctuation, turned into TF-IDF vectors over character 1-3-grams
 * (tfidf.ts), and every pair of entries whose cosine similarity is above the threshold is a
 * near-duplicate pair. Texts of one character or none are left out. With removal, the second
 * entry of each pair found in `input` or `output` is dropped (never for `instruction`: two tasks
 * may be worded alike and still differ), and the next field is searched in what is left.
 *
 * One thing differs from the book's script, on purpose: it skips empty texts before
 * vectorising but then reads the entries by the positions in that shorter list, so in a field
 * where some entries are empty (most `input`s) it prints, and removes, the wrong entries. Here
 * each text keeps its entry: the similarities are the same, the entries are the right ones.
 */
import * as fs from "node:fs";
import { ConfigError, DataError } from "../core/errors";
import { PY_WHITESPACE, similarPairs, tfidfVectors } from "./tfidf";

/** The book's threshold (the default of its `find_near_duplicates`; its command line's default is 0.9). */
export const NEAR_DUPLICATE_THRESHOLD = 0.75;

/** The fields in which the second entry of a pair is removed (the book: not the instruction). */
export const REMOVABLE_FIELDS: readonly string[] = ["input", "output"];

/** A dataset entry: the chapter's three fields, or any string fields (preference data adds chosen/rejected). */
export type TextEntry = Record<string, unknown>;

export interface NearDuplicatePair<E extends object = TextEntry> {
  /** the earlier entry and the later one, as they stand in the data searched */
  first: E;
  second: E;
  /** their positions in the data searched */
  firstIndex: number;
  secondIndex: number;
  /** the cosine similarity of their TF-IDF vectors, in (threshold, 1] */
  similarity: number;
}

export interface FieldSearch<E extends object = TextEntry> {
  field: string;
  pairs: NearDuplicatePair<E>[];
}

// Python's `re.sub(r"[^\w\s]", "", text)`: \w is a letter, a number or "_" (Unicode, as Python's
// str patterns), \s Python's whitespace; everything else (punctuation, symbols, combining marks) goes
const NOT_WORD_OR_SPACE = new RegExp(`[^\\p{L}\\p{N}_${PY_WHITESPACE}]`, "gu");

/** The book's `preprocess_text`: lowercased, punctuation removed. */
export function preprocessText(text: string): string {
  return text.toLowerCase().replace(NOT_WORD_OR_SPACE, "");
}

/** A JSON file holding a non-empty array of objects (any fields); one-line DataErrors naming the file and entry. */
export function readEntriesFile(file: string): TextEntry[] {
  let data: unknown;
  try {
    const text = fs.readFileSync(file, "utf8");
    data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new DataError(`${file}: ${e.code === "ENOENT" ? "no such file" : e.code ? `cannot be read (${e.code})` : `not valid JSON (${e.message.split("\n")[0]})`}`);
  }
  if (!Array.isArray(data) || data.length === 0) throw new DataError(`${file}: expected a non-empty JSON array of entries`);
  data.forEach((entry: unknown, i: number) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw new DataError(`${file}: entry ${i}: expected an object`);
  });
  return data as TextEntry[];
}

/** Check that every entry is an object whose `field` is a string; a one-line DataError naming the entry if not. */
function fieldTexts(entries: object[], field: string, source: string): string[] {
  return entries.map((entry, i) => {
    const value = (entry as TextEntry)[field];
    if (typeof value !== "string") {
      throw new DataError(`${source}: entry ${i}: field "${field}" ${value === undefined ? "is missing" : "must be a string"} (every entry needs the fields of the first one)`);
    }
    return value;
  });
}

/** The near-duplicate pairs of one field (the book's `find_near_duplicates`, with each text kept with its entry). */
export function findNearDuplicates<E extends object>(entries: E[], field: string, threshold = NEAR_DUPLICATE_THRESHOLD, source = "data"): NearDuplicatePair<E>[] {
  if (!(threshold >= 0 && threshold <= 1)) throw new ConfigError(`near-duplicates: the threshold must be a number from 0 to 1, got ${threshold}`);
  const texts = fieldTexts(entries, field, source);
  const kept = texts.flatMap((t, i) => (t ? [i] : [])); // empty texts are not compared (the book's `if item[key]`)
  const vectors = tfidfVectors(kept.map((i) => preprocessText(texts[i])));
  const length = (i: number) => Array.from(texts[i]).length; // code points, as Python's len
  return similarPairs(vectors, threshold)
    .map(({ i, j, similarity }) => ({ firstIndex: kept[i], secondIndex: kept[j], similarity }))
    .filter((p) => length(p.firstIndex) > 1 && length(p.secondIndex) > 1)
    .map((p) => ({ ...p, first: entries[p.firstIndex], second: entries[p.secondIndex] }));
}

/**
 * The book's `find_print_and_remove_near_duplicates`: every field of the first entry searched in
 * turn; with `remove`, each field's second entries in input/output are dropped before the next
 * field is searched. Returns each field's pairs and the entries that are left.
 */
export function searchNearDuplicates<E extends object>(
  entries: E[],
  opts: { threshold?: number; remove?: boolean; source?: string } = {},
): { searches: FieldSearch<E>[]; kept: E[] } {
  if (entries.length === 0) return { searches: [], kept: [] };
  let data = entries;
  const searches: FieldSearch<E>[] = [];
  for (const field of Object.keys(entries[0])) {
    const pairs = findNearDuplicates(data, field, opts.threshold, opts.source);
    searches.push({ field, pairs });
    if (opts.remove && REMOVABLE_FIELDS.includes(field)) {
      const drop = new Set(pairs.map((p) => p.secondIndex));
      data = data.filter((_, i) => !drop.has(i));
    }
  }
  return { searches, kept: data };
}

/**
 * Python's `f"{x:.2f}"`: like toFixed(2), except that an exact tie (x = k + 0.005 exactly in binary,
 * such as 0.125) rounds to the even digit, where toFixed rounds up.
 */
export function formatSimilarity(x: number): string {
  const exact = x.toFixed(100); // the exact decimal value of a float64 of this size
  if (/^-?\d+\.\d\d50*$/.test(exact)) {
    const cents = Math.trunc(x * 100); // the lower of the two
    const even = cents % 2 === 0 ? cents : cents + Math.sign(x);
    return (even / 100).toFixed(2);
  }
  return x.toFixed(2);
}

/** The book's printout for one field: a banner, then each pair with its similarity, or "No duplicates found". */
export function nearDuplicateReport(search: FieldSearch<object>): string {
  const separator = "=".repeat(50);
  let out = `\n\n${separator}\nSearching '${search.field}' for duplicates ...\n${separator}\n`;
  if (search.pairs.length === 0) return out + "No duplicates found\n";
  for (const p of search.pairs) {
    const text = (entry: object) => String((entry as TextEntry)[search.field]);
    out += `Duplicate pair found with similarity ${formatSimilarity(p.similarity)}:\n1. ${text(p.first)}\n2. ${text(p.second)}\n\n`;
  }
  return out;
}
