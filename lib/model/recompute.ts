/**
 * Activation recomputation ("gradient checkpointing"), beside the plain forward pass: a transformer
 * block whose intermediate tensors are not kept for the backward pass. The forward pass keeps only
 * the block's input; the backward pass runs the block again from it (same dropout masks) and
 * differentiates that. One more forward pass per step, in exchange for holding one block's
 * activations at a time instead of every block's: what lets gpt2-medium train with LoRA inside the
 * WebAssembly engine's 4 GiB heap (lib/engine/memory.ts).
 *
 * The gradients are the plain pass's: test/model-recompute.test.ts checks every one.
 */
import * as tf from "@tensorflow/tfjs";
import { Rng } from "../core/random";
import { nestedGradients } from "../engine/nested-gradients";
import type { TransformerBlock } from "./block";

/**
 * `block.apply(x, training, rng)`, differentiable in x and in `trainable` (the block's variables the
 * caller differentiates: every parameter, or LoRA's A and B), without keeping its activations.
 */
export function recomputedBlock(block: TransformerBlock, x: tf.Tensor, training: boolean, rng: Rng, trainable: tf.Variable[]): tf.Tensor {
  const rngState = rng.state; // the backward pass replays the same dropout masks
  const run = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor;
    save([input]);
    // a custom op's forward pass is not recorded on the tape: nothing inside is kept
    const value = block.apply(input, training, rng);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      // run the block again, this time recording, and differentiate it: d(sum(y * dy)) = the vector-Jacobian product
      return nestedGradients(
        () => tf.sum(tf.mul(block.apply(saved[0], training, Rng.fromState(rngState)), dy)) as tf.Scalar,
        [saved[0], ...trainable],
      );
    };
    return { value, gradFunc };
  });
  return run(x, ...trainable);
}
