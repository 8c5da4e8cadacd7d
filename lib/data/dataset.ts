/**
 * The book's `InstructionDataset` (section 7.3): every entry formatted with the Alpaca
 * template plus its response, and tokenized once up front, so batching only pads.
 *
 * Two of the chapter's exercises change it: `promptStyle: "phi3"` formats the entries the
 * Phi-3 way (exercise 7.1), and `maskInstructions` (exercise 7.2) also keeps each entry's
 * prompt length in tokens, the book's `instruction_lengths`, which collate uses to mask the
 * instruction and input out of the targets.
 */
import type { InstructionEntry } from "./instruction-data";
import { formatInput, formatTrainingText, PromptStyle } from "./prompt";
import { encodeText } from "./tokenizer";

/** Anything a DataLoader can batch: a list of token-id sequences. */
export interface TokenizedDataset {
  readonly encoded: number[][];
  /** with instruction masking: the prompt's token count of each sequence (collate masks the targets before it) */
  readonly promptLengths?: number[];
}

export interface InstructionDatasetOptions {
  /** the prompt format (default "alpaca", the chapter's) */
  promptStyle?: PromptStyle;
  /** exercise 7.2: mask the instruction and input in the targets (-100), so only the response is scored */
  maskInstructions?: boolean;
}

export class InstructionDataset implements TokenizedDataset {
  readonly entries: InstructionEntry[];
  readonly promptStyle: PromptStyle;
  /** token ids of `formatTrainingText(entries[i])`, without an end-of-text (collate adds it) */
  readonly encoded: number[][];
  /** with `maskInstructions`: the token count of `formatInput(entries[i])` (the book's instruction_lengths) */
  readonly promptLengths?: number[];

  constructor(entries: InstructionEntry[], opts: InstructionDatasetOptions = {}) {
    this.entries = entries;
    this.promptStyle = opts.promptStyle ?? "alpaca";
    this.encoded = entries.map((entry) => encodeText(formatTrainingText(entry, this.promptStyle)));
    if (opts.maskInstructions) {
      // the prompt tokenized alone, as the book does: its length says where the response starts
      this.promptLengths = entries.map((entry) => encodeText(formatInput(entry, this.promptStyle)).length);
    }
  }

  get length(): number {
    return this.encoded.length;
  }

  /** Token ids of entry `i` (like the book's `__getitem__`). */
  get(i: number): number[] {
    return this.encoded[i];
  }

  /** Token count of each entry. */
  lengths(): number[] {
    return this.encoded.map((ids) => ids.length);
  }

  /**
   * Indices of entries with more than `maxLength` tokens: `collate`'s `allowedMaxLength`
   * cuts their end (and their end-of-text target), so a caller can say so once up front.
   * An entry of exactly `maxLength` tokens loses nothing: its inputs are its L tokens and
   * its targets the last L-1 plus the end-of-text.
   */
  longerThan(maxLength: number): number[] {
    const out: number[] = [];
    this.encoded.forEach((ids, i) => {
      if (ids.length > maxLength) out.push(i);
    });
    return out;
  }

  /**
   * The one line to print before training when some entries will be cut to `maxLength`
   * tokens (the model's context length), or undefined when none will. `name` labels the
   * data, e.g. "train split".
   */
  truncationNotice(maxLength: number, name = "dataset"): string | undefined {
    const long = this.longerThan(maxLength);
    if (long.length === 0) return undefined;
    const shown = long.slice(0, 5).join(", ") + (long.length > 5 ? ", …" : "");
    return (
      `${name}: ${long.length} of ${this.length} entries are longer than ${maxLength} tokens ` +
      `and are cut to fit (entries ${shown})`
    );
  }
}
