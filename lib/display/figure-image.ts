// Render a plotly figure to a static image with headless Chromium, so a reader without
// JavaScript (GitHub's notebook viewer, a saved run folder) still sees the chart.
// One renderer for the notebooks (showPlot) and the command line (the saved loss plot).
//
// playwright-core drives the system's Chromium (it cannot download browsers here); where
// neither exists, the caller gets `{ image: null, reason }` and carries on without the image.
import * as fs from "fs";
import { PLOT_SIZE } from "../core/book";
import { writeAll, writeFileAtomic } from "../core/atomic-file";

/** The parts of a plotly figure this course uses (plotly's own JSON figure format). */
export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

export interface FigureImageOptions {
  /** "png" (default; shown everywhere) or "svg" (vector, smaller for line charts). */
  format?: "png" | "svg";
  /** Pixel size of the chart; defaults to layout.width/height or PLOT_SIZE. */
  width?: number;
  height?: number;
  /** Device pixel ratio of the PNG (2 = sharp on high-DPI screens, 4x the bytes). */
  scale?: number;
  /** Give up after this long (browser start included). */
  timeoutMs?: number;
}

export interface FigureImage {
  /** PNG bytes, or the SVG text; null when no image could be made. */
  image: Buffer | string | null;
  format: "png" | "svg";
  /** Why there is no image (no browser, a failure), for a note in the output. */
  reason?: string;
}

// Flags measured on this machine: without the background-networking ones Chromium keeps
// trying to reach Google's services and floods a closed network.
export const CHROMIUM_ARGS = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

/** The Chromium binary to use: $COURSE_CHROMIUM, else the first system browser found, else null. */
export function findChromium(): string | null {
  const candidates = [
    process.env.COURSE_CHROMIUM,
    "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
  ];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  return null;
}

/** Absolute path of plotly's single-file browser bundle (plotly.js-dist-min). */
export function plotlyScriptPath(): string {
  return require.resolve("plotly.js-dist-min/plotly.min.js");
}

type PlaywrightCore = typeof import("playwright-core");

function loadPlaywright(): PlaywrightCore | null {
  try {
    // a devDependency: the library works without it, only the static image is skipped
    return require("playwright-core") as PlaywrightCore;
  } catch {
    return null;
  }
}

/**
 * Launch headless Chromium with the course's flags and a fresh profile (playwright's temp dir).
 * `ownSignals`: the caller handles Ctrl-C itself (playwright's own handler would exit the
 * process before the caller's cleanup has run).
 */
export async function launchChromium(opts: { ownSignals?: boolean } = {}): Promise<import("playwright-core").Browser> {
  const pw = loadPlaywright();
  if (!pw) throw new Error("playwright-core is not installed");
  const executablePath = findChromium();
  if (!executablePath) throw new Error("no Chromium found (set COURSE_CHROMIUM to its path)");
  const own = opts.ownSignals === true;
  return pw.chromium.launch({ executablePath, args: CHROMIUM_ARGS, handleSIGINT: !own, handleSIGTERM: !own, handleSIGHUP: !own });
}

/** Render `figure` to PNG or SVG with plotly's own `Plotly.toImage` in headless Chromium. */
export async function renderFigureImage(figure: PlotlyFigure, opts: FigureImageOptions = {}): Promise<FigureImage> {
  const format = opts.format ?? "png";
  if (process.env.COURSE_NO_STATIC_IMAGE === "1") return { image: null, format, reason: "static image disabled by COURSE_NO_STATIC_IMAGE=1" };
  if (!loadPlaywright()) return { image: null, format, reason: "playwright-core is not installed" };
  if (!findChromium()) return { image: null, format, reason: "no Chromium found (set COURSE_CHROMIUM)" };
  const layout = figure.layout ?? {};
  const width = opts.width ?? (typeof layout.width === "number" ? layout.width : PLOT_SIZE.width);
  const height = opts.height ?? (typeof layout.height === "number" ? layout.height : PLOT_SIZE.height);
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let browser: import("playwright-core").Browser | null = null;
  let timer: NodeJS.Timeout | undefined;
  try {
    const work = (async () => {
      browser = await launchChromium();
      const page = await browser.newPage();
      await page.setContent("<!doctype html><html><body></body></html>");
      await page.addScriptTag({ path: plotlyScriptPath() });
      const url = await page.evaluate(
        async (args) => {
          const P = (window as unknown as { Plotly: { toImage(fig: unknown, o: unknown): Promise<string> } }).Plotly;
          return P.toImage({ data: args.data, layout: args.layout }, { format: args.format, width: args.width, height: args.height, scale: args.scale });
        },
        { data: figure.data, layout, format, width, height, scale: opts.scale ?? 1 },
      );
      return url;
    })();
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    });
    const url = await Promise.race([work, timeout]);
    // data:image/png;base64,...  or  data:image/svg+xml,<url-encoded svg>
    const comma = url.indexOf(",");
    const head = url.slice(0, comma);
    const body = url.slice(comma + 1);
    if (format === "png") return { image: Buffer.from(body, "base64"), format };
    return { image: head.endsWith(";base64") ? Buffer.from(body, "base64").toString("utf8") : decodeURIComponent(body), format };
  } catch (err) {
    return { image: null, format, reason: `static image failed: ${(err as Error).message.split("\n")[0]}` };
  } finally {
    if (timer) clearTimeout(timer);
    if (browser) await (browser as import("playwright-core").Browser).close().catch(() => undefined);
  }
}

/** Write `figure` as a PNG (or SVG) file; returns the path, or null with the reason printed by the caller. */
export async function saveFigureImage(figure: PlotlyFigure, file: string, opts: FigureImageOptions = {}): Promise<FigureImage> {
  const format = opts.format ?? (file.endsWith(".svg") ? "svg" : "png");
  const out = await renderFigureImage(figure, { ...opts, format });
  if (out.image !== null) {
    const image = out.image;
    writeFileAtomic(file, (fd) => writeAll(fd, image)); // a reader never sees half a file
  }
  return out;
}
