/**
 * How the training loop (and the bench) runs a step and an evaluation: on TF.js (step.ts, the path the
 * notebooks teach), or, on the webgpu engine, on the course's own kernels (gpu-trainer.ts), which hold the
 * weights and AdamW's moments on the GPU between steps and write them back on `sync()`.
 *
 * `path: "auto"` (the default) takes the GPU path wherever it runs (lib/model/gpu's `gpuPathProblem`:
 * the webgpu engine, no LoRA adapter, no dropout); `COURSE_GPU_PATH=0` or `path: "tfjs"` keeps TF.js.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import { batchTensors } from "../data/collate";
import type { GPTModel } from "../model/gpt";
import { GpuGPT, gpuPathProblem } from "../model/gpu";
import type { AdamW } from "./adamw";
import { GpuTrainer } from "./gpu-trainer";
import { calcLossLoader, keptFromValues } from "./loss";
import type { ArrayBatch } from "./schedule";
import { LOSS_BATCH, LossImpl, trainStep } from "./step";

export type StepPath = "auto" | "gpu" | "tfjs";

export interface Stepper {
  /** "gpu": the course's WebGPU kernels; "tfjs": TF.js ops */
  readonly path: "gpu" | "tfjs";
  /** one optimizer step on a batch of token ids; its loss (a TrainingError, weights unchanged, when not finite) */
  step(batch: ArrayBatch, globalStep: number): Promise<number>;
  /** mean loss over batches, without gradients */
  evalLoss(batches: Iterable<ArrayBatch>): Promise<number>;
  /** bring the TF.js model and the optimizer level with the latest weights and moments */
  sync(): Promise<void>;
  /** compute dispatches of the last step (GPU path), for the bench */
  readonly lastDispatches?: number;
  /** host milliseconds spent recording the last step's dispatches (GPU path) */
  readonly lastRecordMs?: number;
  dispose(): void;
}

class TfjsStepper implements Stepper {
  readonly path = "tfjs";
  constructor(private readonly model: GPTModel, private readonly optimizer: AdamW, private readonly loss: LossImpl) {}

  async step(batch: ArrayBatch, globalStep: number): Promise<number> {
    const { inputs, targets } = batchTensors(batch); // (B, T) each
    try {
      return await trainStep(this.model, this.optimizer, inputs, targets, globalStep, this.loss);
    } finally {
      tf.dispose([inputs, targets]);
    }
  }

  evalLoss(batches: Iterable<ArrayBatch>): Promise<number> {
    // a generator: calcLossLoader disposes each batch's tensors after use
    function* tensors() {
      for (const b of batches) yield batchTensors(b);
    }
    return calcLossLoader(tensors(), this.model, undefined, { lossBatch: LOSS_BATCH[this.loss] });
  }

  async sync(): Promise<void> {}
  dispose(): void {}
}

/** The stepper for `model` and `optimizer` (see the file comment). */
export async function makeStepper(model: GPTModel, optimizer: AdamW, opts: { loss?: LossImpl; path?: StepPath } = {}): Promise<Stepper> {
  const wanted = opts.path ?? (process.env.COURSE_GPU_PATH === "0" ? "tfjs" : "auto");
  const problem = gpuPathProblem(model, true);
  if (wanted === "gpu" && problem !== null) throw new ConfigError(`the GPU path cannot train this model: ${problem}`);
  if (wanted === "tfjs" || problem !== null) return new TfjsStepper(model, optimizer, opts.loss ?? "fused");
  return GpuTrainer.create(model, optimizer);
}

/**
 * The mean loss of a model over batches, without gradients (the book's `calc_loss_loader`): on the GPU
 * path on the webgpu engine (unless COURSE_GPU_PATH=0), else TF.js's plain loss, as the book computes it.
 */
export async function meanLoss(model: GPTModel, batches: Iterable<ArrayBatch>): Promise<number> {
  if (process.env.COURSE_GPU_PATH !== "0" && gpuPathProblem(model, false) === null) {
    let total = 0;
    let n = 0;
    for (const b of batches) {
      const kept = keptFromValues(b.targets.flat(), model.cfg.vocabSize, `batch ${n}`);
      total += await GpuGPT.for(model).loss(b.inputs.flat(), b.inputs.length, b.inputs[0].length, kept);
      n++;
    }
    return n === 0 ? NaN : total / n;
  }
  function* tensors() {
    for (const b of batches) yield batchTensors(b);
  }
  return calcLossLoader(tensors(), model); // the book's calc_loss_loader, the plain loss
}
