/**
 * The training step on the course's own WebGPU kernels: the fast twin of `trainStep` (train.ts) for the
 * webgpu engine. One step is one command buffer, nothing read back before its loss:
 *
 *   clear the embedding tables' gradients
 *   forward (lib/model/gpu/forward.ts), head and loss with their gradient (head-loss.ts),
 *   backward (backward.ts), AdamW over each parameter arena (one dispatch each, guarded by the loss)
 *
 * then the loss is read. A NaN or infinite loss leaves every weight as it was (the AdamW kernel reads the
 * loss on the GPU) and throws the same TrainingError as the plain step. The optimizer object keeps the
 * hyperparameters and the step count; its moments live on the GPU while training and are written back into
 * it, with the weights into the TF.js model, by `sync()` (before an epoch's checkpoint, and at the end).
 *
 * test/webgpu-step.test.ts holds it to the plain path: the same losses and weights after several steps.
 */
import * as tf from "@tensorflow/tfjs";
import { TrainingError } from "../core/errors";
import type { GPTModel } from "../model/gpt";
import { GpuGPT } from "../model/gpu";
import { Activations, Capacity, roundUp } from "../model/gpu/activations";
import { Arenas } from "../model/gpu/arenas";
import { BackwardBuffers, clearEmbeddingGrads, recordBackward } from "../model/gpu/backward";
import { recordBlocks, recordFinalNorm } from "../model/gpu/forward";
import { logitRows, recordHeadLoss } from "../model/gpu/head-loss";
import { adamwArena } from "../engine/webgpu/kernels/adamw";
import type { AdamW } from "./adamw";
import { keptFromValues } from "./loss";
import type { ArrayBatch } from "./schedule";

export class GpuTrainer {
  readonly path = "gpu";
  readonly gpu: GpuGPT;
  private grads!: Arenas;
  private m!: Arenas;
  private v!: Arenas;
  private acts: Activations | null = null;
  private back: BackwardBuffers | null = null;
  /** dispatches recorded by the last step (the bench reports them) */
  lastDispatches = 0;
  /** milliseconds the last step spent recording its dispatches on the host (before the submit) */
  lastRecordMs = 0;

  private constructor(private readonly model: GPTModel, private readonly optimizer: AdamW) {
    this.gpu = GpuGPT.for(model);
  }

  /** A trainer for `model` with `optimizer` (AdamW over every parameter): weights and moments copied to the GPU. */
  static async create(model: GPTModel, optimizer: AdamW): Promise<GpuTrainer> {
    const t = new GpuTrainer(model, optimizer);
    await t.gpu.update();
    const { rt, layout } = t.gpu;
    [t.grads, t.m, t.v] = await rt.allocating("the gradients and AdamW's two moments", () =>
      [new Arenas(rt, layout, "gradients"), new Arenas(rt, layout, "AdamW m"), new Arenas(rt, layout, "AdamW v")],
    );
    if (optimizer.hasMoments) {
      // a resumed run: continue from the optimizer's moments (new buffers start at zero otherwise)
      await t.m.upload((name) => optimizer.momentOf("m", name), (x) => x instanceof tf.Variable);
      await t.v.upload((name) => optimizer.momentOf("v", name), (x) => x instanceof tf.Variable);
    }
    return t;
  }

  /** Training buffers for a batch of B × T with K kept targets (grown when a batch needs more). */
  private async buffers(B: number, T: number, K: number): Promise<{ acts: Activations; back: BackwardBuffers; R: number }> {
    const cfg = this.model.cfg;
    const R = Math.min(K, logitRows(cfg.vocabSize, this.gpu.rt.maxBindingBytes));
    const need: Capacity = { N: B * T, att: B * cfg.nHeads * T * T, K, R };
    if (this.acts === null || this.back === null || !this.acts.fits(need)) {
      this.acts?.dispose();
      this.back?.dispose();
      [this.acts, this.back] = [null, null];
      const cap = roundUp(need);
      cap.R = Math.min(cap.K, logitRows(cfg.vocabSize, this.gpu.rt.maxBindingBytes));
      const rt = this.gpu.rt;
      [this.acts, this.back] = await rt.allocating(`the activations of ${B} × ${T} tokens`, () => [new Activations(rt, cfg, cap, true), new BackwardBuffers(rt, cfg, cap)] as const);
    }
    return { acts: this.acts, back: this.back, R };
  }

  /** One optimizer step on one batch (plain token ids); returns its loss. `step` names it in errors. */
  async step(batch: ArrayBatch, step: number): Promise<number> {
    const cfg = this.model.cfg;
    const [B, T] = [batch.inputs.length, batch.inputs[0].length];
    const kept = keptFromValues(batch.targets.flat(), cfg.vocabSize, `training step ${step}`);
    const K = kept.rows.length;
    const { acts, back, R } = await this.buffers(B, T, K);
    const { rt, params } = this.gpu;
    const dispatches = rt.dispatches;
    const errors = rt.errors.length;
    const t0 = performance.now();
    const p = this.gpu.pass({ ids: batch.inputs.flat(), B, T, vocabSize: cfg.vocabSize, kept, blocks: params.layout.blocks }, acts);
    clearEmbeddingGrads(p.rec, this.grads);
    recordBlocks(p);
    recordFinalNorm(p, K, p.meta.kept);
    recordHeadLoss(p, K, R, { arenas: this.grads, dxf: back.dxf });
    recordBackward(p, K, this.grads, back);
    const o = this.optimizer;
    const t = o.stepCount + 1;
    const [beta1, beta2] = o.betas;
    const s = { decay: 1 - o.lr * o.weightDecay, beta1, beta2, stepSize: o.lr / (1 - beta1 ** t), invBc2Sqrt: 1 / Math.sqrt(1 - beta2 ** t), eps: o.eps };
    params.bufs.forEach((buf, i) => adamwArena(rt, p.rec, params.used(i), buf, this.grads.bufs[i], this.m.bufs[i], this.v.bufs[i], { buf: acts.loss, offset: 0 }, s));
    this.lastRecordMs = performance.now() - t0;
    await p.rec.submit();
    this.lastDispatches = rt.dispatches - dispatches;
    const loss = (await rt.readF32(acts.loss, 0, 1, "step"))[0];
    rt.throwIfErrors(errors, `training step ${step} on the GPU path`);
    if (!Number.isFinite(loss)) {
      throw new TrainingError(`training stopped at step ${step}: the loss is ${loss} (try a lower learning rate, or check the data and weights)`);
    }
    o.stepCount = t;
    this.gpu.markAhead();
    return loss;
  }

  /** Mean loss over batches, without gradients (the book's `calc_loss_loader` for an evaluation). */
  async evalLoss(batches: Iterable<ArrayBatch>): Promise<number> {
    let total = 0;
    let n = 0;
    for (const b of batches) {
      const kept = keptFromValues(b.targets.flat(), this.model.cfg.vocabSize, "evaluation");
      total += await this.gpu.loss(b.inputs.flat(), b.inputs.length, b.inputs[0].length, kept);
      n++;
    }
    return n === 0 ? NaN : total / n;
  }

  /** The gradients of the last step, by library name (tests compare them with TF.js's and PyTorch's). */
  async gradients(): Promise<Map<string, Float32Array>> {
    const held: Array<[string, tf.Tensor]> = [];
    await this.grads.download((name, value) => void held.push([name, tf.keep(value.clone())]));
    const out = new Map<string, Float32Array>();
    for (const [name, t] of held) {
      out.set(name, (await t.data()) as Float32Array);
      t.dispose();
    }
    return out;
  }

  /** Write the weights into the TF.js model and the moments into the optimizer (checkpoints, the end of training). */
  async sync(): Promise<void> {
    await this.gpu.writeBack();
    const o = this.optimizer;
    for (const [arenas, which] of [[this.m, "m"], [this.v, "v"]] as const) {
      await arenas.download((name, value) => o.momentOf(which, name).assign(value));
    }
  }

  /** Free the gradients, moments and activations (the GPU copy of the weights stays with the model). */
  dispose(): void {
    for (const a of [this.grads, this.m, this.v]) a?.dispose();
    this.acts?.dispose();
    this.back?.dispose();
    this.acts = null;
    this.back = null;
  }
}
