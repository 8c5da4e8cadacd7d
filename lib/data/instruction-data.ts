/**
 * The book's instruction dataset: 1,100 `{ instruction, input, output }` entries
 * (section 7.2, "Preparing a dataset for supervised instruction fine-tuning").
 *
 * The file ships with the repository (data/instruction-data.json, see data/NOTICE).
 * `loadInstructionData` reads it, downloads it from the book's address only when it
 * is missing (by default only for this file), and validates every entry so that a hand-made dataset fails with a
 * one-line message naming the file, the entry and the field — not with a stack
 * trace deep inside the tokenizer or a NaN loss an hour later.
 *
 * The literal text `<|endoftext|>` inside a field is accepted and kept as text:
 * `encodeText` (tokenizer.ts) turns it into ordinary tokens ("<", "|", "endoftext",
 * "|", ">"), never into the special token 50256, so an entry cannot fake the end of
 * a response. (The book's `tokenizer.encode(text)` would raise on it instead.)
 */
import { promises as fs } from "fs";
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { DataError } from "../core/errors";

/** One training example, exactly as in the book's JSON file. */
export interface InstructionEntry {
  /** what the model is asked to do, e.g. "Identify the correct spelling of the following word." */
  instruction: string;
  /** optional context for the instruction, e.g. "Ocassion"; "" when there is none */
  input: string;
  /** the desired response, e.g. "The correct spelling is 'Occasion.'" */
  output: string;
}

/** The repository's copy of the dataset (resolved from this file, so it works from any working directory). */
export const DEFAULT_DATA_FILE = path.resolve(__dirname, "..", "..", "data", "instruction-data.json");

/** Where the book downloads the file from (chapter 7, `download_and_load_file`). */
export const INSTRUCTION_DATA_URL =
  "https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json";

const FIELDS = ["instruction", "input", "output"] as const;

/** Describe a JSON value's type for an error message ("number", "array", "null"…). */
export function typeName(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value;
}

/**
 * Check parsed JSON and return clean entries (only the three fields, in order).
 * `file` is only used in messages. Whitespace-only instructions or outputs count as
 * empty: a response of "   " teaches nothing and an empty prompt is a data bug.
 */
export function validateInstructionData(data: unknown, file: string): InstructionEntry[] {
  if (!Array.isArray(data)) {
    throw new DataError(`${file}: expected a JSON array of {instruction, input, output} entries, got ${typeName(data)}`);
  }
  if (data.length === 0) {
    throw new DataError(`${file}: the array is empty (no entries)`);
  }
  return data.map((entry: unknown, i: number) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) {
      throw new DataError(`${file}: entry ${i}: expected an object with instruction/input/output, got ${typeName(entry)}`);
    }
    const record = entry as Record<string, unknown>;
    for (const field of FIELDS) {
      if (!(field in record)) {
        throw new DataError(`${file}: entry ${i}: field "${field}" is missing`);
      }
      if (typeof record[field] !== "string") {
        throw new DataError(`${file}: entry ${i}: field "${field}" must be a string, got ${typeName(record[field])}`);
      }
    }
    for (const field of ["instruction", "output"] as const) {
      if ((record[field] as string).trim() === "") {
        throw new DataError(`${file}: entry ${i}: field "${field}" is empty`);
      }
    }
    return {
      instruction: record.instruction as string,
      input: record.input as string,
      output: record.output as string,
    };
  });
}

/** The JSON of a data file's text; a syntax error becomes a one-line DataError naming the file. */
export function parseDataJson(text: string, file: string): unknown {
  try {
    // a byte-order mark (Windows editors add one) is not JSON but is harmless: skip it
    return JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    const reason = (err as Error).message.split("\n")[0];
    throw new DataError(`${file}: not valid JSON (${reason})`);
  }
}

/** Parse the text of a data file; a syntax error becomes a one-line DataError naming the file. */
export function parseInstructionData(text: string, file: string): InstructionEntry[] {
  return validateInstructionData(parseDataJson(text, file), file);
}

/**
 * Download `url` to `file` atomically: the text is parsed before anything is written, and
 * `writeFileAtomic` renames it over `file` only once complete, so an interrupted download
 * never leaves a half-written data file that the next run would trust.
 */
export async function downloadInstructionData(file: string, url = INSTRUCTION_DATA_URL): Promise<void> {
  let text: string;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    text = await response.text();
  } catch (err) {
    throw new DataError(
      `${file}: file is missing and the download from ${url} failed (${(err as Error).message}); ` +
        `download it by hand and save it there`,
    );
  }
  parseInstructionData(text, url); // refuse to save something we could not load
  await fs.mkdir(path.dirname(file), { recursive: true });
  try {
    writeFileAtomic(file, (fd) => writeAll(fd, text)); // about 200 KB: a synchronous write is fine
  } catch (err) {
    throw new DataError(`${file}: could not write the downloaded data (${(err as Error).message})`);
  }
}

export interface InstructionDataLoadOptions {
  /** where to download a missing file from; default the book's address */
  url?: string;
  /** download when the file is missing; default: only for the repository's own data
   *  file or when `url` is given (a typo in a custom path should not fetch the book's data) */
  download?: boolean;
}

/**
 * Read and validate the instruction data (the book's `download_and_load_file`).
 * Downloads only when `file` does not exist (see `InstructionDataLoadOptions.download`).
 */
export async function loadInstructionData(
  file: string = DEFAULT_DATA_FILE,
  opts: InstructionDataLoadOptions = {},
): Promise<InstructionEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") {
      throw new DataError(`${file}: cannot read the data file (${code ?? (err as Error).message})`);
    }
    const download = opts.download ?? (opts.url !== undefined || path.resolve(file) === DEFAULT_DATA_FILE);
    if (!download) throw new DataError(`${file}: no such file`);
    await downloadInstructionData(file, opts.url ?? INSTRUCTION_DATA_URL);
    text = await fs.readFile(file, "utf8");
  }
  return parseInstructionData(text, file);
}
