/**
 * A fully connected layer, `y = x @ W + b`, like PyTorch's `nn.Linear`.
 *
 * W is stored (in, out), the layout of GPT-2's Conv1D checkpoints, so `x @ W`
 * needs no transpose. (`nn.Linear` stores (out, in) and computes `x @ W.T`.)
 *
 * With a LoRA update attached (lora.ts, set by GPTModel.applyLoRA) the layer computes
 * `x @ W + b + (alpha / rank) · x @ A @ B`: the book's `LinearWithLoRA`, in the same forward pass.
 */
import * as tf from "@tensorflow/tfjs";
import { INIT_STD } from "../core/book";
import type { LoRALayer } from "./lora";
import { fuseNow, linearFused } from "./fused-layers";
import { ParamContext, constParam, normalParam } from "./params";

export class Linear {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable | null;
  /** the low-rank update, while LoRA wraps this layer */
  lora: LoRALayer | null = null;

  constructor(ctx: ParamContext, name: string, inDim: number, outDim: number, opts: { bias?: boolean; std?: number } = {}) {
    this.weight = normalParam(ctx, `${name}.weight`, [inDim, outDim], opts.std ?? INIT_STD);
    this.bias = opts.bias === false ? null : constParam(ctx, `${name}.bias`, [outDim], 0);
  }

  /** (..., in) -> (..., out) */
  apply(x: tf.Tensor): tf.Tensor {
    // the same values as one op that keeps only x and W for the backward pass (fused-layers.ts)
    if (fuseNow() && this.bias !== null && this.lora === null) return linearFused(x, this.weight as tf.Tensor2D, this.bias as tf.Tensor1D);
    const [inDim, outDim] = this.weight.shape;
    const lead = x.shape.slice(0, -1);
    // tf.matMul wants matching ranks, so fold the leading axes into rows
    const rows = x.reshape([-1, inDim]); // (..., in) -> (N, in)
    let y = tf.matMul(rows, this.weight); // (N, in) @ (in, out) -> (N, out)
    if (this.bias !== null) y = tf.add(y, this.bias); // (N, out) + (out,)
    if (this.lora !== null) y = tf.add(y, this.lora.apply(rows)); // + (alpha/r) · (N, in) @ (in, r) @ (r, out)
    return y.reshape([...lead, outDim]); // (N, out) -> (..., out)
  }
}
