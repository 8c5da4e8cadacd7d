/**
 * The mean log-probability of each sequence's response tokens under a model: the numbers of the book's
 * `compute_logprobs(model(ids), ids, mask)` (dpo-loss.ts's `computeLogProbs`), computed without the
 * logits nobody reads. The book runs the output head over every position, (B, T, V), and then masks
 * out the prompt and the padding; here only the hidden states of the positions that predict a scored
 * token go through the head: (K, C) -> (K, V), K = scored tokens. The prompt is most of a DPO sequence
 * (about 50 of 80 tokens in the book's first batch), so this skips most of the 50,257-wide head and its
 * log-softmax, and most of their memory. The same values in real arithmetic; test/dpo-golden.test.ts
 * checks them against `computeLogProbs` and against PyTorch.
 */
import * as tf from "@tensorflow/tfjs";
import { DataError } from "../core/errors";
import type { GPTModel } from "../model/gpt";
import { pickPerRow } from "./loss";

/** Which tokens of a batch are scored, read once from the host arrays and shared by the policy and the reference. */
export interface ScoredTokens {
  /** sequences in the batch (S) and their common length (T) */
  sequences: number;
  length: number;
  /** (K,) flat position b·T + t−1 of the hidden state that predicts each scored token */
  rows: Int32Array;
  /** (K,) the scored token ids */
  labels: Int32Array;
  /** (S·K) row-major: 1/count_s where token k belongs to sequence s, else 0 (a per-sequence mean as one matmul) */
  weights: Float32Array;
}

/** The scored tokens of `ids` (S, T) under `masks` (S, T): positions t ≥ 1 whose mask is true. */
export function scoredTokens(ids: number[][], masks: boolean[][], vocabSize: number): ScoredTokens {
  const s = ids.length;
  const t = ids[0]?.length ?? 0;
  const rows: number[] = [];
  const labels: number[] = [];
  const owner: number[] = [];
  const counts = new Array<number>(s).fill(0);
  for (let b = 0; b < s; b++) {
    if (ids[b].length !== t || masks[b].length !== t) throw new DataError(`scoredTokens: row ${b} has ${ids[b].length} ids and ${masks[b].length} mask values, expected ${t}`);
    for (let p = 1; p < t; p++) {
      if (!masks[b][p]) continue;
      const id = ids[b][p];
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new DataError(`scoredTokens: token ${id} at row ${b}, position ${p} is outside [0, ${vocabSize})`);
      rows.push(b * t + p - 1); // the hidden state at p - 1 predicts the token at p
      labels.push(id);
      owner.push(b);
      counts[b]++;
    }
    if (counts[b] === 0) throw new DataError(`scoredTokens: row ${b} has no token to score (its mask is false after position 0)`);
  }
  const weights = new Float32Array(s * rows.length);
  owner.forEach((b, k) => (weights[b * rows.length + k] = 1 / counts[b]));
  return { sequences: s, length: t, rows: Int32Array.from(rows), labels: Int32Array.from(labels), weights };
}

/**
 * Mean log-probability of each sequence's scored tokens under `model`: ids (S, T) int32 -> (S,).
 * `training` turns dropout on (the policy in a training step); differentiable in the model's trainable
 * parameters. With a LoRA adapter attached the head and every layer include it, unless switched off.
 */
export function responseLogProbs(model: GPTModel, ids: tf.Tensor2D, scored: ScoredTokens, training = false): tf.Tensor1D {
  if (ids.shape[0] !== scored.sequences || ids.shape[1] !== scored.length) {
    throw new DataError(`responseLogProbs: ids [${ids.shape}] but the scored tokens were read from [${scored.sequences},${scored.length}]`);
  }
  const k = scored.rows.length;
  return tf.tidy(() => {
    const hidden = model.hidden(ids, training); // (S, T, C) after the final norm
    const flat = hidden.reshape([-1, model.cfg.embDim]); // (S*T, C)
    const kept = tf.gather(flat, tf.tensor1d(scored.rows, "int32")) as tf.Tensor2D; // (K, C)
    const logProbs = tf.logSoftmax(model.head(kept), -1) as tf.Tensor2D; // (K, C) @ (C, V) -> (K, V)
    const picked = pickPerRow(logProbs, scored.labels); // (K,) log p(token)
    const perSequence = tf.tensor2d(scored.weights, [scored.sequences, k]); // (S, K)
    return tf.matMul(perSequence, picked.reshape([k, 1])).reshape([scored.sequences]) as tf.Tensor1D; // (S, K) @ (K, 1) -> (S,)
  });
}
