/**
 * The output head and the loss on the GPU: lib/train/fused-loss.ts's computation, in kernels.
 *
 * Only the kept rows reach the head (forward.ts's recordFinalNorm gathered them into acts.xf, K rows).
 * Blocks of R rows at a time (R · V logits must fit a buffer: 667 rows of GPT-2's vocabulary at 128 MiB):
 *
 *   logits (R, V) = xf (R, C) @ headᵀ                    one matmul per vocabulary block of the head
 *   loss_r = logsumexp(logits_r) - logits_r[t_r]        one cross-entropy dispatch, which (training)
 *   dlogits = (softmax - onehot) / K                    leaves the gradient in place of the logits
 *   dxf (R, C) = dlogits @ head                          (training) per block, summed over blocks
 *   dhead (n, C) += dlogitsᵀ @ xf                        (training) per block, summed over row blocks
 *
 * and the batch's loss = mean of the K row losses, into acts.loss (AdamW's guard reads it there).
 */
import { crossEntropyRows, lossMean } from "../../engine/webgpu/kernels/cross-entropy";
import { matmul } from "../../engine/webgpu/kernels/matmul";
import type { Buf } from "../../engine/webgpu/runtime";
import type { Arenas } from "./arenas";
import type { Pass } from "./forward";

/** Rows of logits at once: what one buffer holds, at most `cap`. */
export function logitRows(V: number, maxBindingBytes: number, cap = 2048): number {
  return Math.max(1, Math.min(cap, Math.floor(maxBindingBytes / (V * 4))));
}

/** logits (rows, V) = xf[r0 …] (rows, C) @ headᵀ, into acts.logits: one matmul per vocabulary block of the head. */
export function recordLogits(p: Pass, rows: number, r0 = 0): void {
  const { rt, rec, cfg, params, acts } = p;
  const { vocabSize: V, embDim: C } = cfg;
  params.layout.blocks.forEach(([start, count], j) => {
    // logits[:, start …] (rows, count) = xf (rows, C) @ head_jᵀ, head_j stored (count, C)
    const xf = { buf: acts.xf, offset: r0 * C, ld: C };
    matmul(rt, rec, { label: "logits", M: rows, N: count, K: C, transB: true, a: xf, b: { ...params.at(`head.${j}`), ld: C }, c: { buf: acts.logits, offset: start, ld: V } });
  });
}

/** Record the head and the loss over K kept rows, R at a time; with `grads`, their gradients too. */
export function recordHeadLoss(p: Pass, K: number, R: number, grads?: { arenas: Arenas; dxf: Buf }): void {
  const { rt, rec, cfg, params, acts } = p;
  const { vocabSize: V, embDim: C } = cfg;
  const blocks = params.layout.blocks;
  for (let r0 = 0; r0 < K; r0 += R) {
    const rows = Math.min(R, K - r0);
    const xf = { buf: acts.xf, offset: r0 * C, ld: C };
    recordLogits(p, rows, r0);
    crossEntropyRows(rt, rec, rows, V, { buf: acts.logits, offset: 0 }, { buf: p.metaBuf, offset: p.meta.targets + r0 }, { buf: acts.losses, offset: r0 }, grads ? 1 / K : null);
    if (grads === undefined) continue;
    blocks.forEach(([start, count], j) => {
      const dlogits = { buf: acts.logits, offset: start, ld: V }; // (rows, count) of the (rows, V) gradient
      // dxf (rows, C) = Σ_j dlogits_j (rows, count) @ head_j (count, C)
      matmul(rt, rec, { label: "head dx", M: rows, N: C, K: count, a: dlogits, b: { ...params.at(`head.${j}`), ld: C }, c: { buf: grads.dxf, offset: r0 * C, ld: C }, beta: j > 0 ? 1 : 0 });
      // dhead_j (count, C) = Σ_row blocks dlogits_jᵀ (count, rows) @ xf (rows, C)
      matmul(rt, rec, { label: "head dW", M: count, N: C, K: rows, transA: true, a: dlogits, b: xf, c: { ...grads.arenas.at(`head.${j}`), ld: C }, beta: r0 > 0 ? 1 : 0 });
    });
  }
  lossMean(rt, rec, K, { buf: acts.losses, offset: 0 }, { buf: acts.loss, offset: 0 }, 1 / K);
}
