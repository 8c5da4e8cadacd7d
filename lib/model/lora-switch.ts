/**
 * A LoRA model with its adapter switched off for a moment: every wrapped linear layer computes
 * `x @ W + b` alone, as the frozen base model did before the adapter was attached. LoRA DPO uses it
 * as the reference model (lib/train/dpo-reference.ts): the frozen weights are exactly the starting
 * model, so the reference needs no second copy of them in memory.
 *
 * The adapter stays attached (its A and B, the optimizer's state); only the layers stop adding its
 * update while `fn` runs, and start again afterwards, also when `fn` throws.
 */
import type { GPTModel } from "./gpt";
import type { LoRALayer } from "./lora";

/** Run `fn` with `model`'s LoRA updates switched off (a model without an adapter runs `fn` as it is). */
export function withAdapterOff<T>(model: GPTModel, fn: () => T): T {
  if (model.lora === null) return fn();
  const switched: [{ lora: LoRALayer | null }, LoRALayer][] = [];
  for (const linear of model.linears().values()) {
    if (linear.lora !== null) {
      switched.push([linear, linear.lora]);
      linear.lora = null;
    }
  }
  try {
    return fn();
  } finally {
    for (const [linear, lora] of switched) linear.lora = lora;
  }
}
