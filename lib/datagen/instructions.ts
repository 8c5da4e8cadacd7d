/**
 * New instruction data from nothing, the book's ch07/05 `llama3-ollama` way (the "Magpie" trick of
 * Xu et al., 2024): an instruction-tuned Llama 3 sent only the start of its chat template's user
 * turn, `<|begin_of_text|><|start_header_id|>user<|end_header_id|>`, as if it had written it itself,
 * goes on by writing a user's request; its first line is the instruction. A second, ordinary
 * request asks the model to answer that instruction, and the pair becomes an entry in the
 * chapter's format (`input` empty).
 *
 * What the book leaves to the reader is done here: every entry is checked (an instruction and an
 * answer, no chat-template tokens leaking through; the book's own sample has an entry with no
 * instruction at all) and compared with the entries kept so far by the near-duplicate finder
 * (lib/data/near-duplicates.ts), so a model that keeps asking the same thing does not fill the file
 * with it. Each try has its own seed (the book's seed never reached Ollama, which reads it from
 * `options`), so the run is repeatable on one machine, and its tries are counted in a small
 * progress file beside the output, so a continued run goes on with new seeds.
 */
import * as fs from "node:fs";
import { ConfigError } from "../core/errors";
import { validateInstructionData, InstructionEntry } from "../data/instruction-data";
import { findNearDuplicates, NEAR_DUPLICATE_THRESHOLD } from "../data/near-duplicates";
import type { JudgeClient } from "../eval/judge-client";
import { askFor, readSavedArray, RetryOptions, saveJson, withProgress } from "./ask";

/** The start of Llama 3's chat template's user turn: the model writes the rest, a request. */
export const LLAMA3_USER_HEADER = "<|begin_of_text|><|start_header_id|>user<|end_header_id|>";

/** The book's `extract_instruction`: the first line with text in it, trimmed (null if none). */
export function extractInstruction(text: string): string | null {
  for (const line of text.split("\n")) if (line.trim()) return line.trim();
  return null;
}

/** Why an instruction cannot be used (null if it can). */
export function instructionProblem(instruction: string | null): string | null {
  if (instruction === null) return "no instruction in the answer";
  if (/<\|[a-z_]+\|>/.test(instruction)) return "a chat-template token in the instruction";
  return null;
}

export interface InstructionOptions extends RetryOptions {
  /** how many entries the file should have */
  count: number;
  /** the output file, rewritten after every entry */
  out: string;
  /** the seed of try t is seed + t */
  seed: number;
  /** sampling temperature of both requests (the book: 1) */
  temperature: number;
  /** near-duplicate threshold (the finder's, 0.75) */
  threshold?: number;
  /** give up after this many tries in all (default 4 * count) */
  maxTries?: number;
  /** after each try: how many entries are kept, and what happened */
  onTry?: (kept: number, outcome: string) => void;
}

/** Where a run keeps its count of tries: `<out>.progress.json`. */
export const progressFile = (out: string): string => `${out.replace(/\.json$/i, "")}.progress.json`;

interface Progress {
  tries: number;
  rejected: { try: number; instruction: string | null; why: string }[];
}

function readProgress(out: string, kept: number): Progress {
  const file = progressFile(out);
  if (!fs.existsSync(file)) return { tries: kept, rejected: [] };
  try {
    const p = JSON.parse(fs.readFileSync(file, "utf8")) as Progress;
    if (Number.isInteger(p.tries) && Array.isArray(p.rejected)) return p;
  } catch {
    // unreadable: counted again from the entries kept
  }
  return { tries: kept, rejected: [] };
}

/** Is `candidate`'s `field` a near-duplicate of a kept entry's? The finder on kept + candidate. */
function nearDuplicateOf(kept: InstructionEntry[], candidate: InstructionEntry, field: "instruction" | "output", threshold: number): number | null {
  const last = kept.length;
  const pair = findNearDuplicates([...kept, candidate], field, threshold).find((p) => p.secondIndex === last);
  return pair ? pair.firstIndex : null;
}

/** Make `count` entries (continuing an earlier run's file); returns them and the tries it took. */
export async function makeInstructions(client: JudgeClient, opts: InstructionOptions): Promise<{ entries: InstructionEntry[]; resumed: number; tries: number }> {
  const threshold = opts.threshold ?? NEAR_DUPLICATE_THRESHOLD;
  const saved = readSavedArray(opts.out, "instruction entries");
  const kept = saved.length ? validateInstructionData(saved, opts.out) : [];
  if (kept.length > opts.count) throw new ConfigError(`--out ${opts.out}: already holds ${kept.length} entries, more than --count ${opts.count}`);
  const resumed = kept.length;
  const progress = readProgress(opts.out, kept.length);
  const maxTries = opts.maxTries ?? 4 * opts.count;
  const save = () => {
    saveJson(opts.out, kept);
    saveJson(progressFile(opts.out), progress);
  };
  const reject = (instruction: string | null, why: string) => {
    progress.rejected.push({ try: progress.tries - 1, instruction, why });
    save();
    opts.onTry?.(kept.length, `rejected: ${why}`);
  };
  if (kept.length < opts.count) await client.ready();
  try {
    while (kept.length < opts.count) {
      if (progress.tries >= maxTries) {
        throw new ConfigError(
          `only ${kept.length} of ${opts.count} entries after ${progress.tries} tries (${progress.rejected.length} rejected, see ${progressFile(opts.out)}); ` +
            `those made are saved in ${opts.out}: run again with a higher --max-tries to continue, or try another --model or --temperature`,
        );
      }
      const seed = opts.seed + progress.tries++;
      const ask = { seed, temperature: opts.temperature, topP: 1 };
      const written = await askFor(client, LLAMA3_USER_HEADER, { ...ask, role: "assistant" }, `try ${seed - opts.seed} (instruction)`, { ...opts, allowEmpty: true });
      const instruction = extractInstruction(written);
      const problem = instructionProblem(instruction);
      if (problem !== null) {
        reject(instruction, problem);
        continue;
      }
      const draft: InstructionEntry = { instruction: instruction as string, input: "", output: "" };
      const twin = nearDuplicateOf(kept, draft, "instruction", threshold);
      if (twin !== null) {
        reject(instruction, `a near-duplicate of entry ${twin}'s instruction`);
        continue;
      }
      const output = await askFor(client, instruction as string, { ...ask, role: "user" }, `try ${seed - opts.seed} (answer)`, { ...opts, allowEmpty: true });
      if (output === "") {
        reject(instruction, "an empty answer");
        continue;
      }
      const entry = { ...draft, output };
      const outputTwin = nearDuplicateOf(kept, entry, "output", threshold);
      if (outputTwin !== null) {
        reject(instruction, `its answer is a near-duplicate of entry ${outputTwin}'s`);
        continue;
      }
      kept.push(validateInstructionData([entry], `try ${seed - opts.seed}`)[0]);
      if (kept.length === opts.count) dropLateDuplicates(kept, threshold, progress);
      save();
      opts.onTry?.(kept.length, "kept");
    }
  } catch (err) {
    throw withProgress(err, kept.length, opts.count, opts.out);
  }
  return { entries: kept, resumed, tries: progress.tries };
}

/**
 * The finder over the whole file, once it is full: each entry was checked against those before it
 * when it came, but the weights (idf) change as entries come, so a pair can cross the threshold
 * later. The second of each such pair goes (as the finder's --remove-duplicates does), and the run
 * goes on making entries until the file is full again.
 */
function dropLateDuplicates(kept: InstructionEntry[], threshold: number, progress: Progress): void {
  for (const field of ["instruction", "output"] as const) {
    const pairs = findNearDuplicates(kept, field, threshold);
    const drop = new Set(pairs.map((p) => p.secondIndex));
    for (const i of [...drop].sort((a, b) => b - a)) {
      progress.rejected.push({ try: -1, instruction: kept[i].instruction, why: `a near-duplicate in ${field} once the file was full` });
      kept.splice(i, 1);
    }
  }
}
