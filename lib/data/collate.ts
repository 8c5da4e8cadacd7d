/**
 * The book's final collate function, `custom_collate_fn` (section 7.3): pad a batch of
 * token sequences into (B, T) inputs and next-token targets, with the padding masked
 * out of the loss.
 *
 * Per sequence: append one end-of-text, right-pad with `padTokenId` to the batch's
 * longest length + 1, take inputs = padded[:-1] and targets = padded[1:], then in the
 * targets replace every pad token except the FIRST by `ignoreIndex` (-100, which the
 * loss skips), and finally cut both to `allowedMaxLength`.
 *
 * The quirk, kept on purpose: the pad token is also the end-of-text token (50256), so
 * the first 50256 in the targets is the end-of-text we appended, and it stays a target.
 * That one kept token teaches the model to emit <|endoftext|> where a response ends;
 * only the pure padding after it is masked. (The mask is "== padTokenId", so any later
 * 50256 would be masked too; `encodeText` never produces 50256 from data text.)
 *
 * Exercise 7.2, instruction masking: given each sequence's prompt length L (the tokens of the
 * instruction and input), the first L-1 targets are set to `ignoreIndex` too, the book's
 * `targets[:instruction_length-1] = -100`. Target t is the token at position t+1, so those are
 * exactly the targets that are prompt tokens; the first scored target is the first token of the
 * response header.
 */
import * as tf from "@tensorflow/tfjs";
import { CourseError } from "../core/errors";
import { END_OF_TEXT } from "./tokenizer";

/** A target equal to this is not scored: collate writes it over padding, and the loss skips it (PyTorch's default ignore_index). */
export const IGNORE_INDEX = -100;

export interface CollateOptions {
  /** token used for padding; the book uses <|endoftext|> = 50256 */
  padTokenId?: number;
  /** written into targets at padding positions; -100 is skipped by the loss */
  ignoreIndex?: number;
  /** cut inputs and targets to this many positions (the model's context length), if given */
  allowedMaxLength?: number;
}

/** `collate` on plain arrays: inputs and targets as number[][], each row of the same length. */
export function collateArrays(
  batch: number[][],
  opts: CollateOptions = {},
  promptLengths?: number[],
): { inputs: number[][]; targets: number[][] } {
  const padTokenId = opts.padTokenId ?? END_OF_TEXT;
  const ignoreIndex = opts.ignoreIndex ?? IGNORE_INDEX;
  const allowedMaxLength = opts.allowedMaxLength;
  if (batch.length === 0) throw new CourseError("collate: the batch is empty");
  if (promptLengths !== undefined && promptLengths.length !== batch.length) {
    throw new CourseError(`collate: ${promptLengths.length} prompt lengths for a batch of ${batch.length}`);
  }
  if (allowedMaxLength !== undefined && !(Number.isInteger(allowedMaxLength) && allowedMaxLength > 0)) {
    throw new CourseError(`collate: allowedMaxLength must be a positive integer, got ${allowedMaxLength}`);
  }

  // +1: room for the end-of-text even on the longest sequence, so its last target exists
  const batchMaxLength = Math.max(...batch.map((item) => item.length + 1));
  const inputs: number[][] = [];
  const targets: number[][] = [];
  for (const [row, item] of batch.entries()) {
    const newItem = [...item, padTokenId];
    const padded = [...newItem, ...new Array<number>(batchMaxLength - newItem.length).fill(padTokenId)];
    let input = padded.slice(0, -1); // (batchMaxLength - 1,)
    let target = padded.slice(1); // shifted left by one: the next token at every position

    // keep the first <|endoftext|> as a target: it teaches the model where a response ends;
    // mask the rest of the padding so the loss ignores it
    let seenFirst = false;
    for (let t = 0; t < target.length; t++) {
      if (target[t] === padTokenId) {
        if (seenFirst) target[t] = ignoreIndex;
        seenFirst = true;
      }
    }
    // exercise 7.2: the prompt's tokens are not targets either, only the response (and its end-of-text)
    if (promptLengths !== undefined) {
      for (let t = 0; t < Math.min(promptLengths[row] - 1, target.length); t++) target[t] = ignoreIndex;
    }

    if (allowedMaxLength !== undefined) {
      input = input.slice(0, allowedMaxLength);
      target = target.slice(0, allowedMaxLength);
    }
    inputs.push(input);
    targets.push(target);
  }
  return { inputs, targets };
}

/** A collated batch of plain arrays as (B, T) int32 tensors, which the caller disposes. */
export function batchTensors(batch: { inputs: number[][]; targets: number[][] }): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  return {
    inputs: tf.tensor2d(batch.inputs, undefined, "int32"), // (B, T)
    targets: tf.tensor2d(batch.targets, undefined, "int32"), // (B, T)
  };
}

/** The final collate: (B, T) int32 tensors, which the caller disposes. `promptLengths`: exercise 7.2's masking. */
export function collate(
  batch: number[][],
  opts: CollateOptions = {},
  promptLengths?: number[],
): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  return batchTensors(collateArrays(batch, opts, promptLengths));
}
