// Browser test: the notebooks as a reader sees them. Starts JupyterLab the way `npm run lab` does
// (scripts/jupyter.ts: the course's Python environment with plotly's JupyterLab extension, served
// from the repository root), and in headless Chromium, for each notebook:
//   - opens the committed notebook, passes the mouse over its outputs and closes it: nothing may
//     mark it changed (no "Save your work?");
//   - runs all cells (offline, small config) and checks what is on the page: no error output,
//     every chart drawn by plotly.js without a mouse-over, tables within the page width, progress
//     bars updated in place and moving, and the kernel shown busy while a cell runs.
// Then `npm run chat`'s page (chat-page.ts): a question answered token by token, Stop, the waiting notice.
// Screenshots go to test-output/screenshots/. Without Chromium the test is skipped, loudly, except
// under CI=true, where it fails.
//
//   npm run test:browser              # test/browser/fixtures/*.ipynb, then notebooks/NN-*.ipynb, then the chat page
//   npm run test:browser -- 01 05     # the fixtures and the notebooks whose names start with these
//   npm run test:browser -- chat      # the chat page alone (no Jupyter)
//   npm run test:browser -- --notebook=test-output/scratch.ipynb   # just this notebook
//   npm run test:browser -- 05 --readme-screenshots
//                                     # also save the chart cell of each notebook with a chart as
//                                     # notebooks/images/<notebook>.png (committed, shown by the README)
//
// The server and its kernels are always stopped (finally, and on Ctrl-C / SIGTERM).
// The last line printed is "N passed, N failed"; the exit status is 1 when anything failed.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Browser } from "playwright-core";
import { findChromium, launchChromium } from "../../lib/display/figure-image";
import { notebookPython, PythonEnvError } from "../../scripts/python-env";
import { JupyterServer, startJupyter } from "./jupyter-server";
import { runChatPageTest } from "./chat-page";
import { openAndClose, OpenCloseReport, PageReport, runNotebook, screenshotChartCell, screenshotFirstChart, screenshotNotebook, shutdownKernel } from "./notebook-page";

const ROOT = path.resolve(__dirname, "../..");
const SHOTS = path.join(ROOT, "test-output", "screenshots");
const NOTEBOOK_TIMEOUT_MS = 1000 * Number(process.env.BROWSER_NOTEBOOK_TIMEOUT ?? 1800);

/**
 * What each chapter must show on the page (issues 2, 3 and 6): 01's danfojs tables, 03's padding
 * chart and table, 05's loss chart and training progress bar, 06's progress bar over the test set.
 */
const EXPECT: Record<string, { charts?: number; tables?: number; progress?: number; moving?: boolean }> = {
  "01": { tables: 1 },
  "03": { charts: 1, tables: 1 },
  "05": { charts: 1, progress: 1, moving: true },
  "06": { progress: 1 },
};

/** The notebooks to run, as paths relative to the repository root. */
function discover(filters: string[]): string[] {
  const fixtures = fs.readdirSync(path.join(ROOT, "test/browser/fixtures")).filter((f) => f.endsWith(".ipynb")).sort().map((f) => `test/browser/fixtures/${f}`);
  const course = fs
    .readdirSync(path.join(ROOT, "notebooks"))
    .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
    .filter((f) => filters.length === 0 || filters.some((p) => f.startsWith(p)))
    .sort()
    .map((f) => `notebooks/${f}`);
  return [...fixtures, ...course];
}

/**
 * What GitHub will show: in the committed file, every plotly output must carry a static image
 * (GitHub runs no JavaScript). Notebooks committed without outputs pass: nothing to show.
 */
export function checkSavedOutputs(rel: string): string[] {
  const nb = JSON.parse(fs.readFileSync(path.join(ROOT, rel), "utf8")) as { cells: { outputs?: { data?: Record<string, unknown> }[] }[] };
  const fail: string[] = [];
  nb.cells.forEach((c, i) => {
    for (const o of c.outputs ?? []) {
      if (o.data?.["application/vnd.course.figure+json"] && !o.data["image/png"] && !o.data["image/svg+xml"]) {
        fail.push(`saved output of cell ${i}: a plotly chart without a static image (blank on GitHub)`);
      }
    }
  });
  return fail;
}

/** The informative line of a tslab error on stderr ("Error: boom", not "evalmachine.<anonymous>:2"). */
function errorLine(stderr: string): string {
  const lines = stderr.split("\n").map((l) => l.trim()).filter(Boolean);
  return lines.find((l) => /^\w*Error\b|^\d+:\d+ - /.test(l)) ?? lines[0] ?? "(no message)";
}

/** What must hold for one notebook; returns the failures. */
export function check(rel: string, r: PageReport): string[] {
  const fail: string[] = [];
  if (r.timedOut) fail.push(`still running after ${NOTEBOOK_TIMEOUT_MS / 1000} s`);
  if (r.kernelDied) fail.push("the kernel died or disconnected during the run");
  for (const c of r.cells) {
    for (const e of c.errors) fail.push(`cell ${c.index}: ${e}`);
    if (c.status === "error" && c.errors.length === 0) fail.push(`cell ${c.index} failed: ${errorLine(c.stderr)}`);
    else if (c.status !== "ok" && c.status !== "error" && !r.timedOut && !r.kernelDied) fail.push(`cell ${c.index} did not run (${c.status ?? "no reply"})`);
  }
  if (r.chartsDrawn < r.charts) {
    fail.push(`${r.charts} chart(s) but ${r.chartsDrawn} drawn by plotly.js without a mouse-over (a static image until hovered: plotly's JupyterLab renderer took the output?)`);
  }
  if (r.pngOutputs < r.charts) fail.push(`${r.charts} chart(s) but ${r.pngOutputs} static image(s) for GitHub`);
  for (const t of r.tablesTooWide) fail.push(`table wider than the page: ${t}`);
  if (r.progressBars !== r.progressBarsMax) fail.push(`progress bars: ${r.progressBarsMax} seen at once during the run but ${r.progressBars} at the end`);
  if (r.idleWhileRunningPolls >= 3) fail.push(`the kernel showed "Idle" for ${r.idleWhileRunningPolls} polls in a row (~${(r.idleWhileRunningPolls * 0.4).toFixed(1)} s) while a cell was running`);
  // what the issues ask each chapter to show (by notebook number)
  const want = EXPECT[path.basename(rel).slice(0, 2)];
  if (rel.startsWith("notebooks/") && want) {
    if (r.chartsDrawn < (want.charts ?? 0)) fail.push(`expected ${want.charts} drawn chart(s), found ${r.chartsDrawn}`);
    if (r.tables < (want.tables ?? 0)) fail.push(`expected ${want.tables} table(s), found ${r.tables}`);
    if (r.progressBars < (want.progress ?? 0)) fail.push(`expected ${want.progress} progress bar(s), found ${r.progressBars}`);
    if (want.moving && r.progressValuesSeen < 3) fail.push(`the progress bar was seen at ${r.progressValuesSeen} position(s) during the run: not moving`);
  }
  // the fixture exercises each feature, so it must show each of them
  if (rel.startsWith("test/browser/fixtures/")) {
    if (r.chartsDrawn < 1) fail.push("fixture: no chart drawn");
    if (r.tables < 1) fail.push("fixture: no table rendered");
    if (r.progressBars < 1) fail.push("fixture: no progress bar");
    else if (r.progressValuesSeen < 3) fail.push(`fixture: the progress bar was seen at ${r.progressValuesSeen} position(s): not updating live`);
  }
  return fail;
}

/** What must hold when a committed notebook is opened, hovered and closed without running it. */
export function checkOpenClose(o: OpenCloseReport): string[] {
  const fail: string[] = [];
  if (o.dirty) fail.push("opening it and passing the mouse over its outputs marked it changed (unsaved)");
  if (o.dialog) fail.push(`closing it asked: ${o.dialog.slice(0, 120)}`);
  return fail;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  // "chat": the chat page; with notebook filters besides it, those notebooks too; alone, only the page
  const withChat = args.length === 0 || args.includes("chat");
  const filters = args.filter((a) => a !== "chat");
  const chatOnly = args.length > 0 && filters.length === 0;
  const readmeShots = process.argv.includes("--readme-screenshots");
  // --notebook=<path under the repository>: run just these (e.g. a scratch notebook under test-output/)
  const only = process.argv.filter((a) => a.startsWith("--notebook=")).map((a) => path.relative(ROOT, path.resolve(a.slice("--notebook=".length))));
  const files = only.length ? only : chatOnly ? [] : discover(filters);
  const runChat = withChat && only.length === 0;
  fs.mkdirSync(SHOTS, { recursive: true });
  let server: JupyterServer | null = null;
  let browser: Browser | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = () =>
    (cleaning ??= (async () => {
      if (browser) await browser.close().catch(() => undefined);
      if (server) await server.stop();
    })());
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      if (cleaning) return; // a second Ctrl-C while stopping: the stop is already under way
      console.error(`\n${sig}: stopping the Jupyter server and the browser`);
      cleanup().finally(() => process.exit(130));
    });
  }

  let passed = 0;
  let failed = 0;
  if (!findChromium()) {
    const line = "no Chromium found: install chromium (Debian/Ubuntu: apt-get install chromium; or set COURSE_CHROMIUM to a Chrome/Chromium binary)";
    if (process.env.CI === "true") {
      console.log(`not ok browser test setup — ${line}\n0 passed, 1 failed`);
      return 1;
    }
    console.log(`\n*** SKIPPED: the browser test (notebooks in JupyterLab): ${line} ***\n`);
    return 0;
  }
  let python = "";
  try {
    if (files.length > 0) python = notebookPython();
  } catch (e) {
    if (!(e instanceof PythonEnvError)) throw e;
    console.log(`not ok browser test setup — ${e.message}\n0 passed, 1 failed`);
    return 1;
  }
  try {
    const t0 = Date.now();
    // COURSE_OFFLINE=1: the offline path (the tiny config, no downloads); COURSE_QUICK=1: notebook 05's
    // quick setting (120 training entries), as the notebook tests use. Either can be overridden.
    const env = { COURSE_OFFLINE: process.env.COURSE_OFFLINE ?? "1", COURSE_QUICK: process.env.COURSE_QUICK ?? "1" };
    if (files.length > 0) server = await startJupyter({ python, env });
    browser = await launchChromium({ ownSignals: true });
    console.log(`${server ? `jupyter ${server.baseUrl} and ` : ""}chromium ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    for (const rel of files) {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const page = await context.newPage();
      const jsErrors: string[] = [];
      // JupyterLab's debugger panel asks every kernel for a debug session; tslab has none
      page.on("pageerror", (e) => !/No active debugger session/.test(e.message) && jsErrors.push(e.message.split("\n")[0]));
      const name = path.basename(rel, ".ipynb");
      let fail: string[];
      let r: PageReport | null = null;
      let o: OpenCloseReport | null = null;
      try {
        // a committed notebook with outputs, as a learner first meets it: read, not run
        if (rel.startsWith("notebooks/")) o = await openAndClose(page, (server as JupyterServer).notebookUrl(rel, `${name}-read`));
        r = await runNotebook(page, (server as JupyterServer).notebookUrl(rel, `${name}-run`), NOTEBOOK_TIMEOUT_MS);
        fail = [...checkSavedOutputs(rel), ...(o ? checkOpenClose(o) : []), ...check(rel, r)];
        await screenshotNotebook(page, path.join(SHOTS, `${name}.png`));
        if (r.charts > 0) {
          await screenshotFirstChart(page, path.join(SHOTS, `${name}-chart.png`));
          if (readmeShots && rel.startsWith("notebooks/")) {
            fs.mkdirSync(path.join(ROOT, "notebooks", "images"), { recursive: true });
            await screenshotChartCell(page, path.join(ROOT, "notebooks", "images", `${name}.png`));
          }
        }
      } catch (err) {
        fail = [`could not run in the browser: ${(err as Error).message.split("\n")[0]}`];
        await page.screenshot({ path: path.join(SHOTS, `${name}-failed.png`) }).catch(() => undefined);
      }
      await shutdownKernel(page);
      await context.close();
      const summary = r
        ? `${r.seconds.toFixed(1)} s, ${r.cells.length} code cells, charts ${r.chartsDrawn}/${r.charts} drawn (${r.pngOutputs} png), tables ${r.tables}` +
          `, progress bars ${r.progressBars} (${r.progressValuesSeen} positions seen live), longest "Idle" while running: ${r.idleWhileRunningPolls} poll(s)` +
          (o ? `; read-only open: charts ${o.chartsDrawn}/${o.charts} drawn, ${o.dirty ? "marked changed" : "unchanged"}` : "")
        : "";
      if (fail.length === 0) {
        passed++;
        console.log(`ok ${rel} — ${summary}`);
      } else {
        failed++;
        console.log(`not ok ${rel} — ${summary}\n    ${fail.join("\n    ")}`);
      }
      const stderr = r?.cells.filter((c) => c.stderr.trim() && c.status !== "error").map((c) => `cell ${c.index} stderr: ${c.stderr.trim().split("\n")[0]}`) ?? [];
      for (const line of [...stderr, ...jsErrors.map((e) => `page error: ${e}`)]) console.log(`    note: ${line}`);
    }
    if (runChat) {
      const t1 = Date.now();
      const chat = await runChatPageTest(browser, SHOTS);
      const summary = `${((Date.now() - t1) / 1000).toFixed(1)} s, ${chat.summary}`;
      if (chat.failures.length === 0) {
        passed++;
        console.log(`ok chat page (npm run chat) — ${summary}`);
      } else {
        failed++;
        console.log(`not ok chat page (npm run chat) — ${summary}\n    ${chat.failures.join("\n    ")}`);
      }
    }
  } catch (err) {
    failed++;
    console.log(`not ok browser test setup — ${(err as Error).message}`);
  } finally {
    await cleanup();
  }
  console.log(`screenshots: ${path.relative(process.cwd(), SHOTS) || "."}/`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then((code) => process.exit(code));
