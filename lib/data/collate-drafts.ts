/**
 * The book's first two collate functions (section 7.3), kept runnable so the notebook
 * can show each step on the same toy batch. The real one is `collate` (collate.ts).
 *
 * Both add one end-of-text token to every sequence and pad to the batch's longest
 * sequence + 1. Draft 1 then drops the last position again: that extra token is not
 * wasted — draft 2 needs it, because the targets are the inputs shifted left by one,
 * and `padded[1:]` must still have the longest sequence's end-of-text as its last target.
 */
import * as tf from "@tensorflow/tfjs";
import { END_OF_TEXT } from "./tokenizer";

/** Each sequence + one end-of-text, right-padded with `padTokenId` to (longest + 1). */
function padBatch(batch: number[][], padTokenId: number): number[][] {
  const batchMaxLength = Math.max(...batch.map((item) => item.length + 1));
  return batch.map((item) => {
    const newItem = [...item, padTokenId];
    return [...newItem, ...new Array<number>(batchMaxLength - newItem.length).fill(padTokenId)];
  });
}

/** Draft 1 (`custom_collate_draft_1`): inputs only, (B, longest) int32. */
export function collateDraft1(batch: number[][], padTokenId = END_OF_TEXT): tf.Tensor2D {
  const inputs = padBatch(batch, padTokenId).map((padded) => padded.slice(0, -1)); // padded[:-1]
  return tf.tensor2d(inputs, undefined, "int32");
}

/** Draft 2 (`custom_collate_draft_2`): inputs and targets shifted by one, padding not yet masked. */
export function collateDraft2(
  batch: number[][],
  padTokenId = END_OF_TEXT,
): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  const padded = padBatch(batch, padTokenId);
  const inputs = padded.map((p) => p.slice(0, -1)); // padded[:-1]
  const targets = padded.map((p) => p.slice(1)); // padded[1:]: the next token at every position
  return {
    inputs: tf.tensor2d(inputs, undefined, "int32"),
    targets: tf.tensor2d(targets, undefined, "int32"),
  };
}
