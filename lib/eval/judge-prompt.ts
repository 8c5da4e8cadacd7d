/**
 * Section 7.8's judge: a larger model is asked to score a response from 0 to 100, given the
 * instruction, the reference output and the response, and to answer with the integer only.
 * The prompt below is this course's own wording of that request; `parseScore` reads the answer.
 */
import type { InstructionEntry } from "../data/instruction-data";

/** An entry of `instruction-data-with-response.json`: the data entry plus the model's response field(s). */
export type ResponseEntry = InstructionEntry & Record<string, unknown>;

/** The question put to the judge for one entry; `response` is the text to score. */
export function judgePrompt(entry: Pick<InstructionEntry, "instruction" | "input" | "output">, response: string): string {
  const parts = [
    "You are grading the response of a language model to an instruction, against a reference answer.",
    "",
    "Instruction:",
    entry.instruction,
  ];
  if (entry.input) parts.push("", "Input:", entry.input);
  parts.push(
    "",
    "Reference answer:",
    entry.output,
    "",
    "Model response:",
    response,
    "",
    "Score the model response from 0 to 100, where 100 means as correct and complete as the reference answer " +
      "and 0 means wrong or no answer. Reply with the integer only, nothing else.",
  );
  return parts.join("\n");
}

export interface ParsedScore {
  /** 0-100, or null when the answer is not one integer in that range */
  score: number | null;
  /** why there is no score */
  reason?: string;
}

/**
 * The judge's answer as a score: the whole answer, trimmed, must be one integer from 0 to 100
 * (the book's `int(score)`); anything else leaves the entry unscored, as the book does.
 */
export function parseScore(answer: string): ParsedScore {
  const text = answer.trim();
  if (!/^[+-]?\d+$/.test(text)) return { score: null, reason: "the answer is not an integer" };
  const n = Number(text);
  if (n < 0 || n > 100) return { score: null, reason: `${n} is outside 0-100` };
  return { score: n };
}
