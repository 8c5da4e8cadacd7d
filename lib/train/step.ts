/**
 * One optimizer step on TF.js: the book's `optimizer.zero_grad(); loss.backward(); optimizer.step()`.
 *
 * TF.js has no `.grad` fields to zero; `tf.variableGrads` returns fresh gradients for one loss each step,
 * which is what `zero_grad(); loss.backward()` amounts to. The step runs it as lean-gradients.ts's
 * `recordLoss`: the same gradients, with each op's saved tensors and intermediate
 * gradients freed as soon as the backward pass is past them, as PyTorch's autograd does
 * (`COURSE_LEAN_BACKPROP=0`: TF.js's own pass, which keeps them all to the end).
 */
import * as tf from "@tensorflow/tfjs";
import { TrainingError } from "../core/errors";
import { recordLoss } from "../engine/lean-gradients";
import { collectGarbage } from "../engine/memory";
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

/** An optimizer that can update each parameter on its own within a step (adamw-fused.ts). */
interface UpdatesOneByOne {
  beginStep(): void;
  updateParam(name: string, g: tf.Tensor): void;
}
const updatesOneByOne = (o: AdamW): o is AdamW & UpdatesOneByOne =>
  typeof (o as Partial<UpdatesOneByOne>).beginStep === "function" && typeof (o as Partial<UpdatesOneByOne>).updateParam === "function";

/**
 * Whether an optimizer that can (the native engine's fused AdamW) updates each weight during the backward pass,
 * as soon as its gradient is final (`COURSE_UPDATE_IN_BACKWARD=0`: after the pass, from all the gradients).
 * The same update either way; during the pass, no two layers' gradients are held at once.
 */
export const UPDATE_IN_BACKWARD = { on: process.env.COURSE_UPDATE_IN_BACKWARD !== "0" };

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
  // every parameter, or only LoRA's A and B while an adapter is attached (frozen weights get no gradient)
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n) as tf.Variable);
  const kept = await readKeptTargets(targets, model.cfg.vocabSize, `training step ${step}`);
  const recorded = recordLoss(() => lossBatch(model, inputs, targets, true, kept), vars);
  try {
    const loss = (await recorded.value.data())[0];
    if (!Number.isFinite(loss)) {
      throw new TrainingError(
        `training stopped at step ${step}: the loss is ${loss} (try a lower learning rate, or check the data and weights)`,
      );
    }
    // gradients come keyed by the variable's engine name; map them back to ours
    if (UPDATE_IN_BACKWARD.on && updatesOneByOne(optimizer)) {
      const nameOf = new Map(vars.map((v, i) => [v.name, names[i]]));
      optimizer.beginStep();
      recorded.backward((v, g) => optimizer.updateParam(nameOf.get(v.name) as string, g));
    } else {
      const grads = recorded.backward();
      try {
        const byName = new Map<string, tf.Tensor>();
        names.forEach((n, i) => {
          const g = grads[vars[i].name];
          if (g !== undefined) byName.set(n, g);
        });
        optimizer.step(byName);
      } finally {
        tf.dispose(grads);
      }
    }
    releaseReplacedWeights();
    return loss;
  } finally {
    recorded.discard(); // nothing to do once the backward pass has run
    recorded.value.dispose();
  }
}
