// Drive one notebook in the classic Jupyter UI: open it, run all cells, wait until the kernel
// is idle with no cell queued or running, and read back what the reader would see.
import type { Page } from "playwright-core";

export interface CellReport {
  index: number;
  executionCount: number | null;
  /** The kernel's execute_reply status: "ok", "error", "aborted", or null when no reply came. */
  status: string | null;
  /** output_type "error": ename: evalue */
  errors: string[];
  stderr: string;
  mimeTypes: string[];
}

export interface PageReport {
  cells: CellReport[];
  /** Outputs that carry a plotly chart (the plotly mime type in their bundle). */
  plotOutputs: number;
  /** Rendered plotly charts (.js-plotly-plot with its svg.main-svg). */
  plotsRendered: number;
  /** Outputs with a static image/png (what GitHub shows). */
  pngOutputs: number;
  /** HTML tables in outputs (showTable / danfojs). */
  tables: number;
  /** Progress bars on the page at the end, and the most ever seen at once. */
  progressBars: number;
  progressBarsMax: number;
  /** Distinct positions a progress bar was seen at while running (updates arriving in place). */
  progressValuesSeen: number;
  timedOut: boolean;
  /** The kernel died or disconnected while cells were queued. */
  kernelDied: boolean;
  seconds: number;
}

declare const Jupyter: any; // the classic notebook's global, only used inside page.evaluate

export async function runNotebook(page: Page, url: string, timeoutMs: number): Promise<PageReport> {
  const t0 = Date.now();
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 60_000 });
  // the notebook is loaded and its kernel (tslab) has started and is idle
  await page.waitForFunction(
    () => typeof Jupyter !== "undefined" && Jupyter.notebook && Jupyter.notebook._fully_loaded && Jupyter.notebook.kernel && Jupyter.notebook.kernel.is_connected() && document.querySelector("#kernel_indicator_icon.kernel_idle_icon") !== null,
    undefined,
    { timeout: 120_000, polling: 500 },
  );
  await page.evaluate(() => {
    // record each cell's execute_reply status: tslab reports a type error on stderr with
    // status "error" and no error output, so the outputs alone would miss it
    const codeCell = Jupyter.notebook.get_cells().find((c: any) => c.cell_type === "code");
    if (codeCell) {
      const proto = Object.getPrototypeOf(codeCell);
      if (!proto.__courseWrapped) {
        const orig = proto._handle_execute_reply;
        proto._handle_execute_reply = function (this: any, msg: any) {
          this.__courseStatus = msg && msg.content && msg.content.status;
          return orig.apply(this, arguments as any);
        };
        proto.__courseWrapped = true;
      }
    }
    Jupyter.notebook.set_autosave_interval(0); // belt and braces: the server refuses saves too
    Jupyter.notebook.clear_all_output();
    Jupyter.notebook.execute_all_cells();
  });

  const seen = new Set<string>();
  let progressBarsMax = 0;
  let idlePolls = 0;
  let timedOut = false;
  let kernelDied = false;
  for (;;) {
    const s = await page.evaluate(() => {
      const cells = Jupyter.notebook.get_cells().filter((c: any) => c.cell_type === "code");
      const busy = cells.some((c: any) => c.input_prompt_number === "*") || document.querySelector("#kernel_indicator_icon.kernel_busy_icon") !== null;
      const dead = document.querySelector("#kernel_indicator_icon.kernel_dead_icon, #kernel_indicator_icon.kernel_disconnected_icon") !== null;
      const bars = Array.from(document.querySelectorAll(".course-progress")).map((e, i) => `${i}:${e.getAttribute("data-value")}`);
      return { busy, dead, bars };
    });
    if (s.dead) {
      // the kernel died (out of memory, a native crash): its queued cells would wait forever
      kernelDied = true;
      break;
    }
    for (const b of s.bars) seen.add(b);
    progressBarsMax = Math.max(progressBarsMax, s.bars.length);
    idlePolls = s.busy ? 0 : idlePolls + 1;
    if (idlePolls >= 3) break; // idle for three polls in a row: not a gap between two cells
    if (Date.now() - t0 > timeoutMs) {
      timedOut = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 400));
  }
  // let plotly finish drawing charts whose script was still loading
  await page.waitForFunction(
    // P.newPlot turns the .course-plot div itself into the .js-plotly-plot
    () => Array.from(document.querySelectorAll(".course-plot")).every((e) => e.querySelector("svg.main-svg") !== null),
    undefined,
    { timeout: 15_000, polling: 250 },
  ).catch(() => undefined);

  const r = await page.evaluate(() => {
    const cells = Jupyter.notebook.get_cells().filter((c: any) => c.cell_type === "code");
    const report = cells.map((c: any, index: number) => {
      const outs: any[] = c.output_area.outputs;
      return {
        index,
        executionCount: typeof c.input_prompt_number === "number" ? c.input_prompt_number : null,
        status: (c.__courseStatus as string | undefined) ?? null,
        errors: outs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`),
        stderr: outs.filter((o) => o.output_type === "stream" && o.name === "stderr").map((o) => o.text).join(""),
        mimeTypes: outs.flatMap((o) => (o.data ? Object.keys(o.data) : [])),
      };
    });
    const all: any[] = cells.flatMap((c: any) => c.output_area.outputs as any[]);
    return {
      cells: report,
      plotOutputs: all.filter((o) => o.data && o.data["application/vnd.plotly.v1+json"]).length,
      pngOutputs: all.filter((o) => o.data && o.data["image/png"]).length,
      plotsRendered: Array.from(document.querySelectorAll(".output_area .js-plotly-plot")).filter((e) => e.querySelector("svg.main-svg")).length,
      tables: document.querySelectorAll(".output_area table").length,
      progressBars: document.querySelectorAll(".course-progress").length,
    };
  });
  return { ...r, progressBarsMax, progressValuesSeen: seen.size, timedOut, kernelDied, seconds: (Date.now() - t0) / 1000 };
}

/** Screenshot the whole notebook: classic Jupyter scrolls inside #site, so unroll it first. */
export async function screenshotNotebook(page: Page, file: string): Promise<void> {
  await page.addStyleTag({ content: "#site { height: auto !important; overflow: visible !important; } body { overflow: visible !important; }" });
  await page.screenshot({ path: file, fullPage: true });
}

/** Screenshot the first rendered chart alone (for the README). */
export async function screenshotFirstChart(page: Page, file: string): Promise<boolean> {
  const el = await page.$(".output_area .js-plotly-plot");
  if (!el) return false;
  await el.scrollIntoViewIfNeeded();
  await el.screenshot({ path: file });
  return true;
}

/** Screenshot the code cell holding the first chart, code and chart together (the README's picture). */
export async function screenshotChartCell(page: Page, file: string): Promise<boolean> {
  const el = await page.$(".cell:has(.output_area .js-plotly-plot)");
  if (!el) return false;
  await el.scrollIntoViewIfNeeded();
  await el.screenshot({ path: file });
  return true;
}
