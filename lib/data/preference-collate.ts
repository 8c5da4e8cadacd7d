/**
 * The book's collate function for DPO (ch07/04, `custom_collate_fn` of section 2.3): a batch of
 * preference examples (preference-dataset.ts) becomes
 *
 *   chosen, rejected            (B, T) token ids, both padded with <|endoftext|> to ONE common length T:
 *                               the longest chosen or rejected sequence of the batch + 1
 *   chosenMask, rejectedMask    (B, T) booleans: true where a token belongs to the response
 *
 * The masks drop the padding, and (by default, `maskPromptTokens`) the prompt and the two "\n" tokens
 * that follow it before "### Response:" — the book's `mask[:prompt.shape[0]+2] = False`. What stays
 * true is "### Response:\n" and the response itself: the tokens DPO scores. Then everything is cut to
 * `allowedMaxLength` (the model's context length).
 *
 * Unlike chapter 7's collate there are no shifted targets and no -100: the log-probability function
 * (lib/train/dpo-logprobs.ts) shifts by one itself and takes the mask. Chosen and rejected share one
 * length so that they can run through the model as one (2B, T) batch.
 */
import * as tf from "@tensorflow/tfjs";
import { DataError } from "../core/errors";
import type { PreferenceExample } from "./preference-dataset";
import { END_OF_TEXT } from "./tokenizer";

/** The book's `"\n\n"` before `### Response:`: GPT-2 encodes it as two "\n" tokens after the prompt, masked with it. */
export const RESPONSE_HEADER_NEWLINES = 2;

export interface PreferenceCollateOptions {
  /** token used for padding; the book uses <|endoftext|> = 50256 */
  padTokenId?: number;
  /** cut every row to this many positions (the book: 1024, the model's context length) */
  allowedMaxLength?: number;
  /** mask the prompt (and the header's two newlines) out too, not only the padding; default true, as the book */
  maskPromptTokens?: boolean;
}

/** A collated batch as plain arrays (the book's `batch_data`, before `torch.stack`). */
export interface PreferenceBatch {
  /** each entry's prompt token ids, not padded */
  prompt: number[][];
  /** (B, T) padded chosen sequences */
  chosen: number[][];
  /** (B, T) padded rejected sequences, the same T */
  rejected: number[][];
  /** (B, T) true at the chosen response's tokens */
  chosenMask: boolean[][];
  /** (B, T) true at the rejected response's tokens */
  rejectedMask: boolean[][];
}

/** Positions 1..T-1 of a mask that are true: what `computeLogProbs` averages over (position 0 has no prediction). */
export function scoredCount(mask: boolean[]): number {
  let n = 0;
  for (let t = 1; t < mask.length; t++) if (mask[t]) n++;
  return n;
}

/**
 * Collate `batch` (the book's `custom_collate_fn`). `entries`: the dataset index of each row, only for
 * the message when a row has no response token left to score (cut off by `allowedMaxLength`), which
 * would make its mean log-probability 0/0.
 */
export function collatePreference(batch: PreferenceExample[], opts: PreferenceCollateOptions = {}, entries?: number[]): PreferenceBatch {
  const pad = opts.padTokenId ?? END_OF_TEXT;
  const maskPrompt = opts.maskPromptTokens ?? true;
  const maxLength = opts.allowedMaxLength;
  if (batch.length === 0) throw new DataError("collatePreference: the batch is empty");
  if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength > 1)) {
    throw new DataError(`collatePreference: allowedMaxLength must be an integer > 1, got ${maxLength}`);
  }
  // one common length for chosen and rejected: the longest of either, + 1 (the book's max_length_common)
  const common = Math.max(...batch.flatMap((item) => [item.chosen.length + 1, item.rejected.length + 1]));
  const out: PreferenceBatch = { prompt: [], chosen: [], rejected: [], chosenMask: [], rejectedMask: [] };
  batch.forEach((item, row) => {
    out.prompt.push([...item.prompt]);
    for (const key of ["chosen", "rejected"] as const) {
      const sequence = item[key];
      let padded = [...sequence, ...new Array<number>(common - sequence.length).fill(pad)];
      // true for the sequence's own tokens, false for the padding
      let mask = padded.map((_, t) => t < sequence.length);
      // false for the prompt and the two "\n" tokens before "### Response:"
      if (maskPrompt) for (let t = 0; t < Math.min(item.prompt.length + RESPONSE_HEADER_NEWLINES, mask.length); t++) mask[t] = false;
      if (maxLength !== undefined) {
        padded = padded.slice(0, maxLength);
        mask = mask.slice(0, maxLength);
      }
      if (scoredCount(mask) === 0) {
        const who = entries ? `entry ${entries[row]}` : `row ${row}`;
        throw new DataError(
          `${who}: the ${key} response has no token to score within ${mask.length} positions ` +
            `(prompt of ${item.prompt.length} tokens, ${key} sequence of ${sequence.length})`,
        );
      }
      out[key].push(padded);
      out[key === "chosen" ? "chosenMask" : "rejectedMask"].push(mask);
    }
  });
  return out;
}

/** The batch as tensors (the book's `torch.stack`): ids int32, masks bool, (B, T) each; the caller disposes them. */
export function preferenceBatchTensors(batch: PreferenceBatch): { chosen: tf.Tensor2D; rejected: tf.Tensor2D; chosenMask: tf.Tensor2D; rejectedMask: tf.Tensor2D } {
  return {
    chosen: tf.tensor2d(batch.chosen, undefined, "int32"),
    rejected: tf.tensor2d(batch.rejected, undefined, "int32"),
    chosenMask: tf.tensor2d(batch.chosenMask, undefined, "bool"),
    rejectedMask: tf.tensor2d(batch.rejectedMask, undefined, "bool"),
  };
}
