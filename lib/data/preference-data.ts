/**
 * The preference data of the book's chapter-7 bonus on DPO (ch07/04, "Direct Preference Optimization
 * for LLM Alignment"): the 1,100 instruction entries again, each with two responses, a preferred one
 * (`chosen`) and a dispreferred one (`rejected`). In the book's file one of the two is the entry's
 * `output` and the other a more polite or a ruder rewrite of it, written by Llama 3 through Ollama.
 *
 * The file ships with the repository (data/instruction-data-with-preference.json, see data/NOTICE).
 * `loadPreferenceData` reads and validates it like the instruction data: a missing or empty field is a
 * one-line error naming the file, the entry and the field, before any token is made. `output` is not
 * needed by DPO (the book keeps it to show the reference answer) and may be left out of a file of one's own.
 */
import { promises as fs } from "fs";
import * as path from "path";
import { DataError } from "../core/errors";
import type { InstructionEntry } from "./instruction-data";
import { parseDataJson, typeName } from "./instruction-data";

/** One preference example: the instruction entry, its preferred and its dispreferred response. */
export interface PreferenceEntry extends InstructionEntry {
  /** the response the model should come to prefer (the book: the polite one) */
  chosen: string;
  /** the response it should come to avoid */
  rejected: string;
}

/** The repository's copy of the book's preference file. */
export const DEFAULT_PREFERENCE_FILE = path.resolve(__dirname, "..", "..", "data", "instruction-data-with-preference.json");

/** Where the book keeps it (ch07/04_preference-tuning-with-dpo). */
export const PREFERENCE_DATA_URL =
  "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/04_preference-tuning-with-dpo/instruction-data-with-preference.json";

/** Fields every entry must have as strings; the ones that must also be non-blank. */
const REQUIRED = ["instruction", "input", "chosen", "rejected"] as const;
const NON_BLANK = ["instruction", "chosen", "rejected"] as const;

/** Check parsed JSON and return clean entries (the five fields, in the book's order). `file` is only used in messages. */
export function validatePreferenceData(data: unknown, file: string): PreferenceEntry[] {
  if (!Array.isArray(data)) {
    throw new DataError(`${file}: expected a JSON array of {instruction, input, output, chosen, rejected} entries, got ${typeName(data)}`);
  }
  if (data.length === 0) throw new DataError(`${file}: the array is empty (no entries)`);
  return data.map((entry: unknown, i: number) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new DataError(`${file}: entry ${i}: expected an object with instruction/input/chosen/rejected, got ${typeName(entry)}`);
    }
    const record = entry as Record<string, unknown>;
    for (const field of REQUIRED) {
      if (!(field in record)) throw new DataError(`${file}: entry ${i}: field "${field}" is missing`);
      if (typeof record[field] !== "string") {
        throw new DataError(`${file}: entry ${i}: field "${field}" must be a string, got ${typeName(record[field])}`);
      }
    }
    if ("output" in record && typeof record.output !== "string") {
      throw new DataError(`${file}: entry ${i}: field "output" must be a string, got ${typeName(record.output)}`);
    }
    // an empty response has no token to score: its mean log-probability would be 0/0
    for (const field of NON_BLANK) {
      if ((record[field] as string).trim() === "") throw new DataError(`${file}: entry ${i}: field "${field}" is empty`);
    }
    return {
      instruction: record.instruction as string,
      input: record.input as string,
      output: (record.output as string | undefined) ?? "",
      chosen: record.chosen as string,
      rejected: record.rejected as string,
    };
  });
}

/** Parse and validate the text of a preference file. */
export function parsePreferenceData(text: string, file: string): PreferenceEntry[] {
  return validatePreferenceData(parseDataJson(text, file), file);
}

/** Read and validate a preference file (the book's `json.load` of instruction-data-with-preference.json). */
export async function loadPreferenceData(file: string = DEFAULT_PREFERENCE_FILE): Promise<PreferenceEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new DataError(code === "ENOENT" ? `${file}: no such file` : `${file}: cannot read the data file (${code ?? (err as Error).message})`);
  }
  return parsePreferenceData(text, file);
}
