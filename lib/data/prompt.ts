/**
 * The Alpaca prompt format (section 7.2): the text the model sees for one entry.
 *
 * `formatInput` is byte-identical to the book's `format_input`: a fixed preamble, the
 * instruction, and the `### Input:` block only when the entry has an input.
 * `formatTrainingText` appends the response, as the book's `InstructionDataset` does.
 */
import type { InstructionEntry } from "./instruction-data";

/** The fixed first sentence of every Alpaca prompt. */
export const ALPACA_PREAMBLE =
  "Below is an instruction that describes a task. " + "Write a response that appropriately completes the request.";

/** Put before the desired output; generation cuts the model's answer after this header. */
export const RESPONSE_HEADER = "\n\n### Response:\n";

/** The prompt: preamble, instruction and (only when non-empty) input. */
export function formatInput(entry: Pick<InstructionEntry, "instruction" | "input">): string {
  const instructionText = `${ALPACA_PREAMBLE}\n\n### Instruction:\n${entry.instruction}`;
  // an empty input would leave a dangling "### Input:" header, so the block is dropped
  const inputText = entry.input ? `\n\n### Input:\n${entry.input}` : "";
  return instructionText + inputText;
}

/** The full training text: prompt + "\n\n### Response:\n" + output. */
export function formatTrainingText(entry: InstructionEntry): string {
  return formatInput(entry) + RESPONSE_HEADER + entry.output;
}
