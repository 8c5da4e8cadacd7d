/**
 * GPT-2 on the course's own WebGPU kernels: the fast twin of lib/model/gpt.ts for the webgpu engine, as
 * llm.c is for PyTorch's GPT-2. The TF.js model stays the model (it is what the notebooks teach, what is
 * saved and loaded); `GpuGPT.for(model)` keeps a copy of its parameters in the GPU layout (layout.ts),
 * brought up to date whenever a parameter of the TF.js model has changed since (a new value: TF.js gives
 * an assigned variable new data), and written back by the trainer after the GPU path trains it.
 *
 * Here: the copy, and the forward passes the GPU path needs without gradients (a batch's loss for
 * evaluations, and generation's cached steps, in lib/generate). Training (gradients, AdamW) is
 * lib/train/gpu-trainer.ts, on forward.ts, head-loss.ts and backward.ts.
 */
import * as tf from "@tensorflow/tfjs";
import { webgpuAdapter } from "../../engine/webgpu";
import { GpuRuntime, gpuRuntime } from "../../engine/webgpu/runtime";
import type { Buf } from "../../engine/webgpu/runtime";
import { record } from "../../engine/webgpu/recorder";
import type { GPTModel } from "../gpt";
import { Activations, Capacity, roundUp } from "./activations";
import { Arenas } from "./arenas";
import { Pass, recordBlocks, recordFinalNorm, CacheView } from "./forward";
import { logitRows, recordHeadLoss } from "./head-loss";
import { GpuLayout, gpuLayout } from "./layout";
import { batchMeta, Meta, MetaInput } from "./meta";

/** Why the GPU path does not run this model, or null when it does. */
export function gpuPathProblem(model: GPTModel, training: boolean): string | null {
  if (webgpuAdapter() === null) return "the engine is not webgpu";
  if (model.lora !== null) return "a LoRA adapter is attached (the GPU path trains every weight)";
  if (training && model.cfg.dropRate > 0) return `dropout ${model.cfg.dropRate} (the GPU path has none; the book fine-tunes with 0)`;
  return null;
}

const copies = new WeakMap<GPTModel, GpuGPT>();

export class GpuGPT {
  readonly rt: GpuRuntime;
  readonly layout: GpuLayout;
  private arenas: Arenas | null = null;
  private inference: Activations | null = null;
  private metaBuf: Buf | null = null;
  /** each parameter's TF.js data id when the copy was last made equal to it */
  private synced: object[] = [];
  /** the GPU copy has been trained past the TF.js model (which `writeBack` brings level again) */
  private ahead = false;

  /** The GPU copy of a model (made on first use, freed with the model). */
  static for(model: GPTModel): GpuGPT {
    let g = copies.get(model);
    if (g === undefined) {
      g = new GpuGPT(model);
      copies.set(model, g);
      model.attach(g);
    }
    return g;
  }

  private constructor(readonly model: GPTModel) {
    this.rt = gpuRuntime();
    this.layout = gpuLayout(model.cfg, model.tables.blocks, this.rt.maxBindingBytes);
  }

  /** The parameters' arenas (made by the first `update`). */
  get params(): Arenas {
    if (this.arenas === null) throw new Error("GpuGPT: update() first");
    return this.arenas;
  }

  private dataIds(): object[] {
    return [...this.model.params.values()].map((v) => v.dataId);
  }

  /** Bring the GPU copy up to date with the TF.js model (a no-op when no parameter changed since). */
  async update(): Promise<void> {
    if (this.ahead) return; // the copy is newer: the trainer writes it back when the TF.js model is needed
    this.arenas ??= await this.rt.allocating(`${this.model.numParams().toLocaleString("en-US")} parameters`, () => new Arenas(this.rt, this.layout, "parameters"));
    const now = this.dataIds();
    if (now.length === this.synced.length && now.every((id, i) => id === this.synced[i])) return;
    await this.params.upload((name) => this.model.param(name), (t) => t instanceof tf.Variable);
    this.synced = now;
  }

  /** Write the GPU copy's parameters back into the TF.js model (after the GPU path trained them). */
  async writeBack(): Promise<void> {
    await this.params.download((name, value) => this.model.param(name).assign(value));
    this.synced = this.dataIds();
    this.ahead = false;
  }

  /** The GPU path has changed the parameters here (a training step): the TF.js model is behind until `writeBack`. */
  markAhead(): void {
    this.ahead = true;
  }

  /** The metadata buffer, holding `meta` (written before the next submit). */
  writeMeta(meta: Meta): Buf {
    if (this.metaBuf === null || this.metaBuf.bytes < meta.words.byteLength) {
      if (this.metaBuf !== null) this.rt.destroy(this.metaBuf);
      this.metaBuf = this.rt.buffer(Math.max(meta.words.byteLength * 2, 4096), "batch metadata");
    }
    this.rt.write(this.metaBuf, 0, meta.words);
    return this.metaBuf;
  }

  /** Inference activations for at least `need` (one set for every layer), grown as needed. */
  async inferenceActivations(need: Capacity): Promise<Activations> {
    if (this.inference === null || !this.inference.fits(need)) {
      this.inference?.dispose();
      this.inference = null;
      this.inference = await this.rt.allocating(`the activations of ${need.N} tokens`, () => new Activations(this.rt, this.model.cfg, roundUp(need), false));
    }
    return this.inference;
  }

  /** A pass over a batch (metadata written, activations ready). */
  pass(m: MetaInput, acts: Activations, cache?: CacheView): Pass {
    const meta = batchMeta(m);
    return { rt: this.rt, rec: record(this.rt), cfg: this.model.cfg, params: this.params, acts, meta, metaBuf: this.writeMeta(meta), B: m.B, T: m.T, cache };
  }

  /**
   * A batch's loss without gradients (the trainer's evaluations, `npm run loss`): ids (B, T) row-major,
   * and the kept positions with their targets (lib/train/loss.ts's KeptTargets).
   */
  async loss(ids: ArrayLike<number>, B: number, T: number, kept: { rows: ArrayLike<number>; ids: ArrayLike<number> }): Promise<number> {
    await this.update();
    const cfg = this.model.cfg;
    const K = kept.rows.length;
    const R = Math.min(K, logitRows(cfg.vocabSize, this.rt.maxBindingBytes));
    const acts = await this.inferenceActivations({ N: B * T, att: B * cfg.nHeads * T * T, K, R });
    const errors = this.rt.errors.length;
    const p = this.pass({ ids, B, T, vocabSize: cfg.vocabSize, kept }, acts);
    recordBlocks(p);
    recordFinalNorm(p, K, p.meta.kept);
    recordHeadLoss(p, K, R);
    await p.rec.submit();
    const loss = (await this.rt.readF32(acts.loss, 0, 1, "loss"))[0];
    this.rt.throwIfErrors(errors, "computing a loss on the GPU path");
    return loss;
  }

  dispose(): void {
    this.arenas?.dispose();
    this.arenas = null;
    this.inference?.dispose();
    if (this.metaBuf !== null) this.rt.destroy(this.metaBuf);
    this.inference = null;
    this.metaBuf = null;
    copies.delete(this.model);
  }
}
