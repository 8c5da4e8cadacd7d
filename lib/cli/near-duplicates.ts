/**
 * `npm run near-duplicates -- --data FILE [--threshold 0.75] [--remove-duplicates] [--out FILE]`:
 * the book's `find-near-duplicates.py` (ch07/02). Prints, for every field of the entries, the pairs
 * whose TF-IDF cosine similarity (character 1-3-grams, lib/data/tfidf.ts) is above the threshold,
 * exactly as the book prints them; with --remove-duplicates, writes the data without the second
 * entry of each pair found in `input` or `output` (atomically: a stopped run leaves no half file).
 * Only text is compared, so no engine is started.
 */
import * as path from "node:path";
import { Command } from "commander";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { ConfigError } from "../core/errors";
import { DEFAULT_DATA_FILE } from "../data/instruction-data";
import { NEAR_DUPLICATE_THRESHOLD, nearDuplicateReport, readEntriesFile, REMOVABLE_FIELDS, searchNearDuplicates } from "../data/near-duplicates";
import { runCli } from "./common";

interface NearDuplicatesCliOptions {
  data: string;
  threshold: number;
  removeDuplicates: boolean;
  out?: string;
}

const parseThreshold = (value: string): number => {
  const x = Number(value);
  if (value.trim() === "" || !(x >= 0 && x <= 1)) throw new ConfigError(`--threshold must be a number from 0 to 1, got "${value}"`);
  return x;
};

async function main(): Promise<void> {
  const opts = new Command("near-duplicates")
    .description("Find near-duplicate entries in an instruction dataset (TF-IDF over character 1-3-grams, cosine similarity), as the book's find-near-duplicates.py")
    .option("--data <file>", "a JSON array of entries (the chapter's {instruction, input, output}, or any string fields)", DEFAULT_DATA_FILE)
    .option("--threshold <x>", "pairs with a cosine similarity above this are near-duplicates (0-1; higher: stricter)", parseThreshold, NEAR_DUPLICATE_THRESHOLD)
    .option("--remove-duplicates", `write the data without the second entry of each pair found in ${REMOVABLE_FIELDS.join(" or ")}`, false)
    .option("--out <file>", "where --remove-duplicates writes (default: <data>-deduplicated.json)")
    .parse()
    .opts<NearDuplicatesCliOptions>();
  if (opts.out !== undefined && !opts.removeDuplicates) throw new ConfigError("--out goes with --remove-duplicates (without it nothing is written)");
  const out = opts.out ?? `${opts.data.replace(/\.json$/i, "")}-deduplicated.json`;
  if (opts.removeDuplicates && path.resolve(out) === path.resolve(opts.data)) {
    throw new ConfigError(`--out ${out} is the --data file itself: choose another file, so the original stays`);
  }
  const entries = readEntriesFile(opts.data);
  const { searches, kept } = searchNearDuplicates(entries, { threshold: opts.threshold, remove: opts.removeDuplicates, source: opts.data });
  console.error(`${entries.length} entries in ${opts.data}; threshold ${opts.threshold}`);
  for (const search of searches) process.stdout.write(nearDuplicateReport(search));
  if (!opts.removeDuplicates) return;
  writeFileAtomic(out, (fd) => writeAll(fd, JSON.stringify(kept, null, 4) + "\n"));
  console.error(`removed ${entries.length - kept.length} of ${entries.length} entries (the second of each near-duplicate pair in ${REMOVABLE_FIELDS.join(" or ")}); wrote ${kept.length} to ${out}`);
}

if (require.main === module) runCli(main);
