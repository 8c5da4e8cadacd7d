/**
 * Dropout that only acts while training, like PyTorch's `nn.Dropout` after
 * `model.train()`: in evaluation (and at rate 0) it returns its input unchanged.
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../core/random";

export function dropout(x: tf.Tensor, rate: number, training: boolean, rng: Rng): tf.Tensor {
  if (!training || rate === 0) return x;
  // a fresh seed from the model's generator per call: every mask differs, yet a seeded run repeats
  return tf.dropout(x, rate, undefined, rng.seed());
}
