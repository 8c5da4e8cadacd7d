/**
 * The bench's training timings (lib/cli/bench.ts): the same events as the trainer runs them — optimizer
 * steps and evaluations — through the trainer's own stepper (lib/train/stepper.ts: TF.js, or the course's
 * WebGPU kernels on the webgpu engine), each step timed to its loss on the host.
 */
import { IGNORE_INDEX } from "../data/collate";
import type { GPTModel } from "../model/gpt";
import type { AdamW } from "../train/adamw";
import type { ArrayBatch } from "../train/schedule";
import { makeStepper, StepPath } from "../train/stepper";
import { GpuTrainer } from "../train/gpu-trainer";
import { round } from "./common";
import { GpuStepProfile, profileGpuStep } from "./bench-kernels";
import { median } from "./bench-measure";

/** One thing the benchmark does, in order: a training step, or an evaluation over some batches (torch_bench.py's job format). */
export type BenchEvent = { train?: ArrayBatch; eval?: ArrayBatch[] };

export interface TrainingTimes {
  path: "gpu" | "tfjs";
  stepTimes: number[];
  /** padded and scored (not -100) tokens of the timed steps */
  padded: number;
  real: number;
  scheduleSeconds: number;
  evalSeconds: number;
  /** GPU path: compute dispatches of each step, and the host's time to record them (ms) */
  dispatches: number[];
  recordMs: number[];
  /** GPU path with `profile`: one more step's GPU time by kernel */
  gpuProfile?: GpuStepProfile;
}


/** Run and time the events (see the file comment). */
export async function benchTraining(
  model: GPTModel,
  optimizer: AdamW,
  events: BenchEvent[],
  opts: { schedule: boolean; path: StepPath; profile?: boolean },
  say: (line: string) => void,
): Promise<TrainingTimes> {
  const stepper = await makeStepper(model, optimizer, { path: opts.path });
  say(`training on ${stepper.path === "gpu" ? "the course's WebGPU kernels (lib/model/gpu)" : "TF.js ops"}`);
  const steps = events.filter((e) => e.train).length;
  const out: TrainingTimes = { path: stepper.path, stepTimes: [], padded: 0, real: 0, scheduleSeconds: 0, evalSeconds: 0, dispatches: [], recordMs: [] };
  const s0 = performance.now();
  try {
    for (const event of events) {
      if (event.eval) {
        const e0 = performance.now();
        const mean = await stepper.evalLoss(event.eval);
        out.evalSeconds += (performance.now() - e0) / 1000;
        say(`eval after step ${out.stepTimes.length}: loss ${mean.toFixed(3)}`);
        continue;
      }
      const batch = event.train as ArrayBatch;
      const i = out.stepTimes.length;
      const t0 = performance.now();
      const loss = await stepper.step(batch, i + 1);
      const dt = (performance.now() - t0) / 1000;
      out.stepTimes.push(dt);
      if (stepper.lastDispatches !== undefined) out.dispatches.push(stepper.lastDispatches);
      if (stepper.lastRecordMs !== undefined) out.recordMs.push(stepper.lastRecordMs);
      const shape = [batch.inputs.length, batch.inputs[0].length];
      out.padded += shape[0] * shape[1];
      out.real += batch.targets.flat().filter((t) => t !== IGNORE_INDEX).length;
      const calls = stepper.lastDispatches !== undefined ? `, ${stepper.lastDispatches} dispatches` : "";
      if (!opts.schedule || i % 20 === 0) say(`step ${i + 1}/${steps}: (${shape.join(", ")}) loss ${loss.toFixed(3)} in ${dt.toFixed(3)} s${calls}`);
    }
    out.scheduleSeconds = (performance.now() - s0) / 1000;
    const first = events.find((e) => e.train)?.train;
    if (opts.profile && stepper instanceof GpuTrainer && first) {
      try {
        out.gpuProfile = await profileGpuStep(stepper, first, out.stepTimes.length + 1, say);
      } catch (err) {
        say(`no GPU profile: ${(err as Error).message}`); // e.g. a device without timestamp queries
      }
    }
    await stepper.sync(); // the model holds the trained weights for what follows (generation, a profile)
  } finally {
    stepper.dispose();
  }
  return out;
}

/** The JSON fields of a timed run. */
export function trainingFigures(t: TrainingTimes): Record<string, unknown> {
  const seconds = t.stepTimes.reduce((a, b) => a + b, 0);
  return {
    train_path: t.path,
    step_s: t.stepTimes.length ? round(median(t.stepTimes)) : null,
    train_tokens_per_s: t.stepTimes.length ? round(t.padded / seconds) : null,
    real_tokens_per_s: t.stepTimes.length ? round(t.real / seconds) : null,
    ...(t.dispatches.length ? { dispatches_per_step: Math.max(...t.dispatches), record_ms_per_step: round(median(t.recordMs)) } : {}),
    ...(t.gpuProfile ? { gpu_profile: t.gpuProfile } : {}),
  };
}
