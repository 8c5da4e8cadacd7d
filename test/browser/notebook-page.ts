// Drive one notebook in JupyterLab 4 (the app exposed as window.jupyterapp): open it, run all
// cells, watch the page while they run, and read back what the reader sees. Also: open a
// committed notebook without running it, pass the mouse over its outputs, close it, and see
// whether JupyterLab thinks it changed.
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
  /** Chart outputs on the page (the course's .course-plot html, or plotly's JupyterLab renderer). */
  charts: number;
  /** Of those, drawn as an interactive plotly chart (a visible svg.main-svg) with no mouse-over. */
  chartsDrawn: number;
  /** Outputs with a static image/png (what GitHub shows). */
  pngOutputs: number;
  /** HTML tables in outputs (showTable / danfojs). */
  tables: number;
  /** Tables wider than their output area: "cell N: W px in a C px output". */
  tablesTooWide: string[];
  /** Progress bars on the page at the end, and the most ever seen at once. */
  progressBars: number;
  progressBarsMax: number;
  /** Distinct positions a progress bar was seen at while running (updates arriving in place). */
  progressValuesSeen: number;
  /** Longest run of polls (~0.4 s apart) where a cell was running but the kernel showed "idle". */
  idleWhileRunningPolls: number;
  timedOut: boolean;
  /** The kernel died or disconnected while cells were queued. */
  kernelDied: boolean;
  seconds: number;
}

declare const window: any; // the page's window (jupyterapp), only used inside page.evaluate

/** Open a notebook URL and wait until JupyterLab shows it with its kernel started and idle. */
async function openNotebook(page: Page, url: string): Promise<void> {
  await page.goto(url, { waitUntil: "domcontentloaded", timeout: 60_000 });
  await page.waitForFunction(
    () => {
      const w = window.jupyterapp?.shell?.currentWidget;
      return !!(w && w.content && w.context?.isReady && w.sessionContext?.session?.kernel && w.sessionContext.kernelDisplayStatus === "idle");
    },
    undefined,
    { timeout: 120_000, polling: 500 },
  );
}

/** Charts on the page, and how many are drawn by plotly.js right now (no mouse involved). */
const CHART_PROBE = () => {
  const panel = window.jupyterapp.shell.currentWidget;
  // plotly's renderer is the output node itself (.jp-OutputArea-output.jp-RenderedPlotly); the course's html holds a .course-plot
  const sel = ".course-plot, .jp-RenderedPlotly";
  const charts = Array.from(panel.node.querySelectorAll(".jp-OutputArea-output")).filter((o: any) => o.matches(sel) || o.querySelector(sel)) as any[];
  const drawn = charts.filter((o) => {
    const svg = o.querySelector("svg.main-svg");
    return svg && svg.getBoundingClientRect().width > 0 && getComputedStyle(svg.closest(".plot-container") ?? svg).display !== "none";
  });
  return { charts: charts.length, drawn: drawn.length };
};

export interface OpenCloseReport {
  /** JupyterLab's dirty flag after the outputs were shown and hovered. */
  dirty: boolean;
  /** Closing asked "Save your work?" (or any dialog). */
  dialog: string | null;
  charts: number;
  chartsDrawn: number;
}

/**
 * A learner opens a committed notebook, scrolls through it with the mouse over the outputs, and
 * closes it without running anything: nothing may count as a change.
 */
export async function openAndClose(page: Page, url: string): Promise<OpenCloseReport> {
  await openNotebook(page, url);
  await page.waitForTimeout(2000); // renderers that draw asynchronously
  for (const out of await page.$$(".jp-OutputArea-output")) {
    await out.scrollIntoViewIfNeeded().catch(() => undefined);
    await out.hover({ timeout: 2000 }).catch(() => undefined);
  }
  await page.waitForTimeout(2000); // a redraw on mouse-over writes its image back asynchronously
  const probe = await page.evaluate(CHART_PROBE);
  const dirty = await page.evaluate(() => window.jupyterapp.shell.currentWidget.context.model.dirty as boolean);
  await shutdownKernel(page);
  await page.evaluate(() => {
    void window.jupyterapp.commands.execute("application:close");
  });
  const found = await page.waitForSelector(".jp-Dialog", { timeout: 2000 }).catch(() => null);
  const dialog = found ? await found.innerText() : null;
  if (found) await page.click(".jp-Dialog button:has-text('Discard')", { timeout: 2000 }).catch(() => page.keyboard.press("Escape"));
  return { dirty, dialog: dialog && dialog.replace(/\s+/g, " ").trim(), charts: probe.charts, chartsDrawn: probe.drawn };
}

export async function runNotebook(page: Page, url: string, timeoutMs: number): Promise<PageReport> {
  const t0 = Date.now();
  await openNotebook(page, url);
  await page.evaluate(() => {
    const app = window.jupyterapp;
    const panel = app.shell.currentWidget;
    // record each request's execute_reply status: tslab reports a type error on stderr with
    // status "error" and no error output, so the outputs alone would miss it
    const course: { code: Record<string, string>; replies: { code: string; status: string }[] } = { code: {}, replies: [] };
    window.__course = course;
    panel.sessionContext.session.kernel.anyMessage.connect((_: unknown, a: any) => {
      const m = a.msg;
      if (a.direction === "send" && m.header.msg_type === "execute_request") course.code[m.header.msg_id] = m.content.code;
      if (a.direction === "recv" && m.header.msg_type === "execute_reply") course.replies.push({ code: course.code[m.parent_header.msg_id], status: m.content.status });
    });
    void app.commands.execute("notebook:clear-all-cell-outputs").then(() => app.commands.execute("notebook:run-all-cells"));
  });

  const seen = new Set<string>();
  let progressBarsMax = 0;
  let idlePolls = 0;
  let idleWhileRunning = 0;
  let idleWhileRunningPolls = 0;
  let timedOut = false;
  let kernelDied = false;
  let started = false;
  for (;;) {
    const s = await page.evaluate(() => {
      const panel = window.jupyterapp.shell.currentWidget;
      const cells = panel.content.widgets.filter((c: any) => c.model.type === "code");
      const running = cells.some((c: any) => c.model.executionState === "running");
      // what the toolbar's and the status bar's kernel indicator show
      const status = panel.sessionContext.kernelDisplayStatus as string;
      const bars = Array.from(panel.node.querySelectorAll(".course-progress")).map((e: any, i) => `${i}:${e.getAttribute("data-value")}`);
      return { running, status, bars };
    });
    if (/dead|unknown|terminating|disconnected/.test(s.status) && started) {
      // the kernel died (out of memory, a native crash): its queued cells would wait forever
      kernelDied = true;
      break;
    }
    started ||= s.running;
    for (const b of s.bars) seen.add(b);
    progressBarsMax = Math.max(progressBarsMax, s.bars.length);
    idleWhileRunning = s.running && s.status === "idle" ? idleWhileRunning + 1 : 0;
    idleWhileRunningPolls = Math.max(idleWhileRunningPolls, idleWhileRunning);
    idlePolls = started && !s.running && s.status === "idle" ? idlePolls + 1 : 0;
    if (idlePolls >= 3) break; // idle for three polls in a row: not a gap between two cells
    if (Date.now() - t0 > timeoutMs) {
      timedOut = true;
      break;
    }
    await new Promise((r) => setTimeout(r, 400));
  }
  // let plotly finish drawing charts whose script was still loading
  await page
    .waitForFunction(() => Array.from(document.querySelectorAll(".course-plot")).every((e) => e.querySelector("svg.main-svg") !== null), undefined, { timeout: 15_000, polling: 250 })
    .catch(() => undefined);

  const r = await page.evaluate(() => {
    const panel = window.jupyterapp.shell.currentWidget;
    const replies: { code: string; status: string }[] = [...window.__course.replies];
    const cells = panel.content.widgets.filter((c: any) => c.model.type === "code");
    const report = cells.map((c: any, index: number) => {
      const outs: any[] = c.model.outputs.toJSON();
      const source = c.model.sharedModel.getSource();
      const i = replies.findIndex((x) => x.code === source);
      const status = i >= 0 ? replies.splice(i, 1)[0].status : null;
      return {
        index,
        executionCount: typeof c.model.executionCount === "number" ? c.model.executionCount : null,
        status,
        errors: outs.filter((o) => o.output_type === "error").map((o) => `${o.ename}: ${o.evalue}`),
        stderr: outs.filter((o) => o.output_type === "stream" && o.name === "stderr").map((o) => [].concat(o.text).join("")).join(""),
        mimeTypes: outs.flatMap((o) => (o.data ? Object.keys(o.data) : [])),
        tables: Array.from(c.node.querySelectorAll(".jp-OutputArea-output table")).map((t: any) => {
          const area = t.closest(".jp-OutputArea-output");
          return { width: Math.round(t.getBoundingClientRect().width), room: area.clientWidth };
        }),
      };
    });
    return {
      cells: report.map(({ tables, ...c }: any) => c),
      tables: report.reduce((n: number, c: any) => n + c.tables.length, 0),
      tablesTooWide: report.flatMap((c: any) => c.tables.filter((t: any) => t.width > t.room + 1).map((t: any) => `cell ${c.index}: ${t.width} px in a ${t.room} px output`)),
      pngOutputs: report.reduce((n: number, c: any) => n + c.mimeTypes.filter((m: string) => m === "image/png").length, 0),
      progressBars: panel.node.querySelectorAll(".course-progress").length,
    };
  });
  const probe = await page.evaluate(CHART_PROBE);
  return {
    ...r,
    charts: probe.charts,
    chartsDrawn: probe.drawn,
    progressBarsMax,
    progressValuesSeen: seen.size,
    idleWhileRunningPolls,
    timedOut,
    kernelDied,
    seconds: (Date.now() - t0) / 1000,
  };
}

/** Shut the notebook's kernel down (each notebook starts its own; six would not fit in memory). */
export async function shutdownKernel(page: Page): Promise<void> {
  await page.evaluate(() => window.jupyterapp?.shell?.currentWidget?.sessionContext?.shutdown()).catch(() => undefined);
}

/** Screenshot the page as it stands (JupyterLab scrolls inside the notebook panel). */
export async function screenshotNotebook(page: Page, file: string): Promise<void> {
  await page.screenshot({ path: file });
}

/** Screenshot the first chart alone. */
export async function screenshotFirstChart(page: Page, file: string): Promise<boolean> {
  const el = await page.$(".jp-OutputArea-output:has(.course-plot), .jp-OutputArea-output.jp-RenderedPlotly");
  if (!el) return false;
  await el.scrollIntoViewIfNeeded();
  await el.screenshot({ path: file });
  return true;
}

/** Screenshot the code cell holding the first chart, code and chart together (the README's picture). */
export async function screenshotChartCell(page: Page, file: string): Promise<boolean> {
  const el = await page.$(".jp-CodeCell:has(.course-plot, .jp-RenderedPlotly)");
  if (!el) return false;
  await el.scrollIntoViewIfNeeded();
  await el.screenshot({ path: file });
  return true;
}
