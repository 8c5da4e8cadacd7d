// progressDisplay: a progress bar with ETA for training and generation.
// In a notebook it is ONE output updated in place (Jupyter's display_id + update_display_data,
// which tslab's kernel can send), so a long run leaves one bar, not hundreds of lines; a run
// saved by nbclient keeps the bar's final state. In a terminal it is a cli-progress bar.
// The bar moves even while a synchronous training step blocks the event loop (tslab's
// messages leave through ZeroMQ's own thread; checked by the browser test's fixture).
//
//   let bar: ProgressHandle | undefined;
//   await trainModelSimple(model, trainLoader, valLoader, optimizer, {
//     ...options,
//     onStep: (s) => (bar ??= progressDisplay(s.totalSteps, "fine-tuning")).tick(1, `loss ${s.loss.toFixed(3)}`),
//   });
//   bar?.done();
import { randomBytes } from "crypto";
import * as cliProgress from "cli-progress";
import { ConfigError } from "../core/errors";
import { emitBundle, escapeHtml, inNotebook } from "./kernel";

export interface ProgressHandle {
  /** Advance by `n` steps (default 1); `info` is a short status such as "loss 1.234". */
  tick(n?: number, info?: string): void;
  /** Set the position to `value` steps. */
  update(value: number, info?: string): void;
  /** Finish: show the final state (100% unless stopped early) and the total time. */
  done(info?: string): void;
  /** Print a line of output (a log line) without breaking the bar: in a terminal, above it. */
  log(line: string): void;
  readonly value: number;
}

export interface ProgressOptions {
  /** At most one notebook update per this many ms (default 250): updates are messages to the browser. */
  minIntervalMs?: number;
  /** Force the notebook or terminal rendering (default: notebook when running in tslab). */
  mode?: "notebook" | "terminal";
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, "0") : String(m);
  return `${h > 0 ? `${h}:` : ""}${mm}:${String(r).padStart(2, "0")}`;
}

/** The status text: "label  45/100  45%  [0:12 < 0:15, 3.75 it/s]  info". */
export function progressText(label: string, value: number, total: number, elapsedS: number, info: string, finished: boolean): string {
  const pct = Math.floor((100 * value) / total);
  const rate = elapsedS > 0 ? value / elapsedS : 0;
  const eta = value > 0 ? (elapsedS / value) * (total - value) : NaN;
  const timing = finished ? `[${formatDuration(elapsedS)}, ${rate.toFixed(2)} it/s]` : `[${formatDuration(elapsedS)} < ${formatDuration(eta)}, ${rate.toFixed(2)} it/s]`;
  return `${label ? label + "  " : ""}${value}/${total}  ${pct}%  ${timing}${info ? "  " + info : ""}`;
}

function notebookBundle(label: string, value: number, total: number, elapsedS: number, info: string, finished: boolean) {
  const text = progressText(label, value, total, elapsedS, info, finished);
  const width = 30;
  const filled = Math.round((width * value) / total);
  return {
    "text/html":
      `<div class="course-progress" data-value="${value}" data-total="${total}" style="font-family:monospace">` +
      `<progress value="${value}" max="${total}" style="width:20em;vertical-align:middle"></progress> ${escapeHtml(text)}</div>`,
    "text/plain": `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}`,
  };
}

/** Start a progress bar over `total` steps. */
export function progressDisplay(total: number, label = "", opts: ProgressOptions = {}): ProgressHandle {
  if (!Number.isInteger(total) || total <= 0) throw new ConfigError(`progressDisplay: total must be a positive integer, got ${total}`);
  const mode = opts.mode ?? (inNotebook() ? "notebook" : "terminal");
  const minInterval = opts.minIntervalMs ?? 250;
  const start = Date.now();
  let value = 0;
  let info = "";
  let finished = false;

  if (mode === "notebook") {
    const displayId = `course-progress-${randomBytes(6).toString("hex")}`;
    let lastSent = 0;
    const send = (update: boolean) => {
      lastSent = Date.now();
      emitBundle(notebookBundle(label, value, total, (lastSent - start) / 1000, info, finished), { displayId, update });
    };
    send(false);
    const set = (v: number, i?: string) => {
      if (finished) return;
      value = Math.min(Math.max(0, v), total);
      if (i !== undefined) info = i;
      if (Date.now() - lastSent >= minInterval) send(true);
    };
    return {
      tick: (n = 1, i) => set(value + n, i),
      update: (v, i) => set(v, i),
      done: (i) => {
        if (finished) return;
        if (i !== undefined) info = i;
        finished = true;
        send(true);
      },
      log: (line) => console.log(line), // the bar is its own display: ordinary output goes below it
      get value() { return value; },
    };
  }

  const bar = new cliProgress.SingleBar(
    {
      format: `${label ? label + " " : ""}[{bar}] {value}/{total} {percentage}% | {duration_formatted} < ETA {eta_formatted} | {info}`,
      hideCursor: true,
      noTTYOutput: true, // in a log file: one line every few seconds instead of nothing
      forceRedraw: true, // draw again even if unchanged: `log` may have cleared the line
      notTTYSchedule: 5000,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { info: "" });
  return {
    tick: (n = 1, i) => {
      if (finished) return;
      value = Math.min(value + n, total);
      bar.update(value, { info: i ?? info });
      if (i !== undefined) info = i;
    },
    update: (v, i) => {
      if (finished) return;
      value = Math.min(Math.max(0, v), total);
      if (i !== undefined) info = i;
      bar.update(value, { info });
    },
    done: (i) => {
      if (finished) return;
      finished = true;
      if (i !== undefined) info = i;
      bar.update(value, { info });
      bar.stop();
    },
    log: (line) => {
      const tty = !finished && process.stderr.isTTY;
      // clear the bar's line (on stderr) so the text is not printed after it; the bar redraws below
      if (tty) process.stderr.write("\r\x1b[2K");
      console.log(line);
      // save the cursor at the bar's new line: cli-progress returns to the saved position when it stops
      if (tty) process.stderr.write("\x1b7");
    },
    get value() { return value; },
  };
}
