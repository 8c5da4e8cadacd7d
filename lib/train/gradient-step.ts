/**
 * One optimizer step on any loss of a model: the gradients of every trainable parameter (LoRA's A and B
 * alone while an adapter is attached; frozen weights get none), a refusal before any update when the
 * loss is not finite, then AdamW. The DPO step uses it; chapter 7's `trainStep` (train.ts) does the same
 * for the cross-entropy loss.
 *
 * TF.js has no `.grad` fields to zero: `tf.variableGrads` returns fresh gradients for one loss, which is
 * what the book's `optimizer.zero_grad(); loss.backward()` amounts to.
 */
import * as tf from "@tensorflow/tfjs";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "./adamw";
import { TrainingError } from "./train";

/** Minimise `lossFn` by one AdamW step on `model`'s trainable parameters; returns the loss. `what` names the step in an error. */
export async function gradientStep(model: GPTModel, optimizer: AdamW, lossFn: () => tf.Scalar, what: string): Promise<number> {
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n) as tf.Variable);
  // variableGrads keys the gradients by each variable's engine name; map them back to ours
  const { value, grads } = tf.variableGrads(lossFn, vars);
  try {
    const loss = (await value.data())[0];
    if (!Number.isFinite(loss)) {
      throw new TrainingError(`training stopped at ${what}: the loss is ${loss} (try a lower learning rate, or check the data and weights)`);
    }
    const byName = new Map<string, tf.Tensor>();
    names.forEach((n, i) => {
      const g = grads[vars[i].name];
      if (g !== undefined) byName.set(n, g);
    });
    optimizer.step(byName);
    return loss;
  } finally {
    value.dispose();
    tf.dispose(grads);
  }
}
