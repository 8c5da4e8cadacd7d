/**
 * One optimizer step on TF.js: the book's `optimizer.zero_grad(); loss.backward(); optimizer.step()`.
 *
 * TF.js has no `.grad` fields to zero; `tf.variableGrads` returns fresh gradients for one loss each step,
 * which is what `zero_grad(); loss.backward()` amounts to. The step runs it as `leanVariableGrads`
 * (lib/engine/lean-gradients.ts): the same gradients, with each op's saved tensors and intermediate
 * gradients freed as soon as the backward pass is past them, as PyTorch's autograd does
 * (`COURSE_LEAN_BACKPROP=0`: TF.js's own pass, which keeps them all to the end).
 */
import * as tf from "@tensorflow/tfjs";
import { TrainingError } from "../core/errors";
import { leanVariableGrads } from "../engine/lean-gradients";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "./adamw";
import { calcLossBatch, readKeptTargets } from "./loss";
import { calcLossBatchFused } from "./fused-loss";

/**
 * Which implementation of the loss the loop runs: "fused" (default) is lib/train/fused-loss.ts,
 * the same numbers faster; "plain" is `calcLossBatch`, the definition written out.
 */
export type LossImpl = "fused" | "plain";
export const LOSS_BATCH = { fused: calcLossBatchFused, plain: calcLossBatch } as const;

/**
 * One optimizer step on one batch: loss, gradients of every trainable parameter (LoRA's A and B
 * alone while an adapter is attached), AdamW update.
 * Returns the loss; throws TrainingError (naming `step`) before updating if it is not finite.
 * The targets and the loss are read with `await data()`, which works on every engine.
 */
export async function trainStep(
  model: GPTModel,
  optimizer: AdamW,
  inputs: tf.Tensor2D,
  targets: tf.Tensor2D,
  step: number,
  loss: LossImpl = "fused",
): Promise<number> {
  const lossBatch = LOSS_BATCH[loss];
  // every parameter, or only LoRA's A and B while an adapter is attached (frozen weights get no gradient)
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n) as tf.Variable);
  const kept = await readKeptTargets(targets, model.cfg.vocabSize, `training step ${step}`);
  // variableGrads keys gradients by the variable's engine name; map them back to ours
  const { value, grads } = leanVariableGrads(() => lossBatch(model, inputs, targets, true, kept), vars);
  try {
    const loss = (await value.data())[0];
    if (!Number.isFinite(loss)) {
      throw new TrainingError(
        `training stopped at step ${step}: the loss is ${loss} (try a lower learning rate, or check the data and weights)`,
      );
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
