/**
 * One optimizer step on TF.js for chapter 7's loss: gradient-step.ts's `gradientStep` (the book's
 * `optimizer.zero_grad(); loss.backward(); optimizer.step()`) on `calc_loss_batch`, fused or plain, with the
 * targets' kept positions read first.
 */
import * as tf from "@tensorflow/tfjs";
import { collectGarbage } from "../engine/memory";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "./adamw";
import { calcLossBatch, readKeptTargets } from "./loss";
import { calcLossBatchFused } from "./fused-loss";
import { gradientStep } from "./gradient-step";
export { UPDATE_IN_BACKWARD } from "./gradient-step";

/**
 * Which implementation of the loss the loop runs: "fused" (default) is lib/train/fused-loss.ts,
 * the same numbers faster; "plain" is `calcLossBatch`, the definition written out.
 */
export type LossImpl = "fused" | "plain";
export const LOSS_BATCH = { fused: calcLossBatchFused, plain: calcLossBatch } as const;

let replacedReleased = false;

/**
 * After the first step of a run on the native engine, collect the JavaScript buffers of the weights it replaced
 * (engine/memory.ts's `collectGarbage` says why): once, since later steps replace libtensorflow's own buffers.
 */
function releaseReplacedWeights(): void {
  if (replacedReleased || tf.getBackend() !== "tensorflow") return;
  replacedReleased = true;
  collectGarbage();
}

/**
 * One optimizer step on one batch: loss, gradients of every trainable parameter (LoRA's A and B
 * alone while an adapter is attached), AdamW update.
 * Returns the loss; throws TrainingError (naming `step`) before updating if it is not finite: the loss is read
 * between the forward and the backward pass (lean-gradients.ts's `recordLoss`), so a bad step is not
 * differentiated either. The targets and the loss are read with `await data()`, which works on every engine.
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
  const kept = await readKeptTargets(targets, model.cfg.vocabSize, `training step ${step}`);
  const value = await gradientStep(model, optimizer, () => lossBatch(model, inputs, targets, true, kept), `step ${step}`);
  releaseReplacedWeights();
  return value;
}
