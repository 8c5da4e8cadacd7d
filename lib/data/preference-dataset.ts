/**
 * The book's `PreferenceDataset` (ch07/04, section 2.3): every entry tokenized once, up front, as three
 * token lists — the prompt alone (the Alpaca `format_input`), and the prompt followed by the response
 * header and the chosen, and the rejected, response:
 *
 *   prompt    formatInput(entry)
 *   chosen    formatInput(entry) + "\n\n### Response:\n" + entry.chosen
 *   rejected  formatInput(entry) + "\n\n### Response:\n" + entry.rejected
 *
 * The prompt's token count tells the collate function (preference-collate.ts) where the response
 * starts. No end-of-text is appended: unlike instruction fine-tuning, DPO scores the response only.
 */
import { formatInput, RESPONSE_HEADER } from "./prompt";
import type { PreferenceEntry } from "./preference-data";
import { encodeText } from "./tokenizer";

/** One entry's token ids (the book's `{"prompt", "chosen", "rejected"}` dict). */
export interface PreferenceExample {
  prompt: number[];
  chosen: number[];
  rejected: number[];
}

/** The full text of a response to an entry: prompt, response header, response. */
export function preferenceText(entry: PreferenceEntry, response: "chosen" | "rejected"): string {
  return formatInput(entry) + RESPONSE_HEADER + entry[response];
}

export class PreferenceDataset {
  readonly entries: PreferenceEntry[];
  readonly encoded: PreferenceExample[];

  constructor(entries: PreferenceEntry[]) {
    this.entries = entries;
    this.encoded = entries.map((entry) => ({
      prompt: encodeText(formatInput(entry)),
      chosen: encodeText(preferenceText(entry, "chosen")),
      rejected: encodeText(preferenceText(entry, "rejected")),
    }));
  }

  get length(): number {
    return this.encoded.length;
  }

  /** The token ids of entry `i` (the book's `__getitem__`). */
  get(i: number): PreferenceExample {
    return this.encoded[i];
  }
}
