// runProgress: the progress bar of a run whose length is known only when it reports its first step
// (a training loop, a scoring run), wired once for the notebooks and the command lines:
//
//   const progress = runProgress("fine-tuning");
//   await trainModelSimple(model, trainLoader, valLoader, optimizer, { ...options, log: progress.log, onStep: progress.onStep });
//   progress.done();
//
// The bar is made at the first report (progressDisplay, progress.ts); `log` prints a line of the run's
// output without breaking it (above the bar in a terminal; in a notebook the bar is its own output and
// lines go below). `enabled: false` (a command line whose output is not a terminal) makes no bar at all:
// lines go straight to `log`.
import { progressDisplay, ProgressHandle } from "./progress";

/** What a training loop reports after each step (a subset of lib/train's StepInfo). */
export interface StepReport {
  /** global step just taken (0-based) */
  step: number;
  /** steps in the whole run */
  totalSteps: number;
  epoch: number;
  loss: number;
}

export interface RunProgress {
  /** Position `value` of `total`, with an optional short status; the first call makes the bar. */
  update(value: number, total: number, info?: string): void;
  /** For the training loops' `onStep`: step s + 1 of the run, "epoch E, loss L". */
  onStep(s: StepReport): void;
  /** A line of the run's output, printed without breaking the bar. */
  log(line: string): void;
  /** Finish the bar (nothing when none was made); later updates make no new one. */
  done(info?: string): void;
}

export interface RunProgressOptions {
  /** show a bar (default true); false: only the log lines */
  enabled?: boolean;
  /** where log lines go while no bar is shown (default console.log) */
  log?: (line: string) => void;
}

/** A progress bar made at the run's first report; see the file comment. */
export function runProgress(label: string, opts: RunProgressOptions = {}): RunProgress {
  const enabled = opts.enabled ?? true;
  const plainLog = opts.log ?? ((line: string) => console.log(line));
  let bar: ProgressHandle | undefined;
  let finished = false;
  const update = (value: number, total: number, info?: string) => {
    if (!enabled || finished) return;
    (bar ??= progressDisplay(total, label)).update(value, info);
  };
  return {
    update,
    onStep: (s) => update(s.step + 1, s.totalSteps, `epoch ${s.epoch + 1}, loss ${s.loss.toFixed(3)}`),
    log: (line) => (bar && !finished ? bar.log(line) : plainLog(line)),
    done: (info) => {
      finished = true;
      bar?.done(info);
    },
  };
}
