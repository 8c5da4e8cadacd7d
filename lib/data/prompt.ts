/**
 * Prompt formats: the text the model sees for one entry.
 *
 * "alpaca" (section 7.2, the chapter's format): `formatInput` is byte-identical to the book's
 * `format_input`: a fixed preamble, the instruction, and the `### Input:` block only when the
 * entry has an input; the response follows "\n\n### Response:\n".
 * "phi3" (exercise 7.1): the much shorter format of Microsoft's Phi-3 models as the book's
 * exercise solution writes it: "<|user|>\n" + instruction (+ "\n" + input), then the response
 * after "\n<|assistant|>:\n". (`<|user|>` and `<|assistant|>` are plain text to GPT-2's tokenizer:
 * a few ordinary tokens each, not special tokens.)
 * `formatTrainingText` appends the response, as the book's `InstructionDataset` does.
 */
import type { InstructionEntry } from "./instruction-data";

/** The prompt formats the course knows: the chapter's, and exercise 7.1's. */
export const PROMPT_STYLES = ["alpaca", "phi3"] as const;
export type PromptStyle = (typeof PROMPT_STYLES)[number];

/** The fixed first sentence of every Alpaca prompt. */
export const ALPACA_PREAMBLE =
  "Below is an instruction that describes a task. " + "Write a response that appropriately completes the request.";

/** Put before the desired output; generation cuts the model's answer after this header. */
export const RESPONSE_HEADER = "\n\n### Response:\n";

/** Exercise 7.1: the Phi-3 format's user tag, before the instruction. */
export const PHI3_USER_TAG = "<|user|>";
/** Exercise 7.1: put before the desired output in the Phi-3 format (the book's "\n<|assistant|>:\n"). */
export const PHI3_RESPONSE_HEADER = "\n<|assistant|>:\n";

/** The prompt: preamble, instruction and (only when non-empty) input. */
export function formatInput(entry: Pick<InstructionEntry, "instruction" | "input">, style: PromptStyle = "alpaca"): string {
  if (style === "phi3") {
    return `${PHI3_USER_TAG}\n${entry.instruction}` + (entry.input ? `\n${entry.input}` : "");
  }
  const instructionText = `${ALPACA_PREAMBLE}\n\n### Instruction:\n${entry.instruction}`;
  // an empty input would leave a dangling "### Input:" header, so the block is dropped
  const inputText = entry.input ? `\n\n### Input:\n${entry.input}` : "";
  return instructionText + inputText;
}

/** What goes between the prompt and the response in a training text. */
export function responseHeader(style: PromptStyle = "alpaca"): string {
  return style === "phi3" ? PHI3_RESPONSE_HEADER : RESPONSE_HEADER;
}

/** The header without its newlines ("### Response:", "<|assistant|>:"): removed from a generated answer. */
export function responseMarker(style: PromptStyle = "alpaca"): string {
  return responseHeader(style).trim();
}

/** The full training text: prompt + response header + output. */
export function formatTrainingText(entry: InstructionEntry, style: PromptStyle = "alpaca"): string {
  return formatInput(entry, style) + responseHeader(style) + entry.output;
}
