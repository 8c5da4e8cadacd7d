/**
 * One optimizer step on any loss of a model: the book's `optimizer.zero_grad(); loss.backward(); optimizer.step()`.
 * Chapter 7's `trainStep` (step.ts) runs it on the cross-entropy loss, the DPO step (dpo-train.ts) on the DPO loss.
 *
 * TF.js has no `.grad` fields to zero; gradients come fresh for one loss each step, which is what
 * `zero_grad(); loss.backward()` amounts to. The step runs lean-gradients.ts's `recordLoss`: the same gradients
 * as `tf.variableGrads`, with each op's saved tensors and intermediate gradients freed as soon as the backward
 * pass is past them, as PyTorch's autograd does (`COURSE_LEAN_BACKPROP=0`: TF.js's own pass, which keeps them
 * all to the end).
 */
import * as tf from "@tensorflow/tfjs";
import { TrainingError } from "../core/errors";
import { recordLoss } from "../engine/lean-gradients";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "./adamw";

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
 * Minimise `lossFn` by one AdamW step on `model`'s trainable parameters (LoRA's A and B alone while an adapter
 * is attached; frozen weights get no gradient); returns the loss. Throws TrainingError naming `what` before any
 * update when the loss is not finite: the loss is read between the forward and the backward pass, so a bad step
 * is not differentiated either. The loss is read with `await data()`, which works on every engine.
 */
export async function gradientStep(model: GPTModel, optimizer: AdamW, lossFn: () => tf.Scalar, what: string): Promise<number> {
  const trainable = model.trainableParams();
  const names = [...trainable.keys()];
  const vars = names.map((n) => trainable.get(n) as tf.Variable);
  const recorded = recordLoss(lossFn, vars);
  try {
    const loss = (await recorded.value.data())[0];
    if (!Number.isFinite(loss)) {
      throw new TrainingError(`training stopped at ${what}: the loss is ${loss} (try a lower learning rate, or check the data and weights)`);
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
    return loss;
  } finally {
    recorded.discard(); // nothing to do once the backward pass has run
    recorded.value.dispose();
  }
}
