/**
 * The loss plot of section 7.6, the book's `plot_losses`, with plotly:
 * training and validation loss against epochs (bottom axis), and the same
 * points against tokens seen (a second x axis on top, as the book's `ax1.twiny()`).
 *
 * `lossPlotFigure` returns plotly's JSON figure: the notebooks show it with
 * `showPlot` (lib/display), the command line saves it with `saveLossPlot` as an
 * interactive HTML file (plotly.js inlined, so it opens offline) and a PNG made by
 * headless Chromium when one is available.
 */
import * as fs from "fs";
import * as path from "path";
import { PLOT_SIZE } from "../core/book";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { PlotlyFigure, plotlyScriptPath, saveFigureImage } from "./figure-image";
import type { TrainHistory } from "../train/train";

/** The four series the book passes to plot_losses. */
export type LossCurves = Pick<TrainHistory, "trainLosses" | "valLosses" | "tokensSeen" | "epochsAt">;

export interface LossPlotOptions {
  title?: string;
  /** x positions for the epoch axis; default: the history's `epochsAt` (where each evaluation really was) */
  epochsSeen?: number[];
  /** the run's length: the epoch axis spans [0, numEpochs] (default: as far as the data goes) */
  numEpochs?: number;
  /** the loss axis's range, e.g. [0, 3] to zoom in past the first steps' high losses (default: all of it) */
  yRange?: [number, number];
  /** what the two curves are (default "loss"): the y axis's title and the legend's "Training …", "Validation …" (DPO plots "reward margins" too) */
  label?: string;
  /** the legend's corner (default "upper right", the book's; rising curves such as reward margins want "lower right") */
  legend?: "upper right" | "lower right";
  width?: number;
  height?: number;
}

/**
 * The epoch axis's tick spacing: whole epochs, at most 10 ticks, the step 1, 2 or 5 times a power of ten
 * (40 epochs: every 5th; 2 epochs: every one), as the book's MaxNLocator(integer=True) thins them.
 */
export function epochTickStep(epochs: number): number {
  for (let scale = 1; ; scale *= 10) {
    for (const base of [1, 2, 5]) if (epochs / (base * scale) <= 10) return base * scale;
  }
}

/** The figure: two visible lines on the epoch axis, one invisible trace that lays out the tokens axis. */
export function lossPlotFigure(curves: LossCurves, opts: LossPlotOptions = {}): PlotlyFigure {
  const x = opts.epochsSeen ?? curves.epochsAt;
  const label = opts.label ?? "loss";
  const epochs = opts.numEpochs ?? Math.ceil(Math.max(1, ...x));
  return {
    data: [
      { type: "scatter", mode: "lines", name: `Training ${label}`, x, y: curves.trainLosses, xaxis: "x", yaxis: "y" },
      {
        type: "scatter",
        mode: "lines",
        name: `Validation ${label}`,
        x,
        y: curves.valLosses,
        line: { dash: "dashdot" }, // the book's linestyle="-."
        xaxis: "x",
        yaxis: "y",
      },
      // the book's `ax2.plot(tokens_seen, train_losses, alpha=0)`: only there to scale the top axis
      {
        type: "scatter",
        mode: "lines",
        name: "tokens",
        x: curves.tokensSeen,
        y: curves.trainLosses,
        xaxis: "x2",
        yaxis: "y",
        opacity: 0,
        showlegend: false,
        hoverinfo: "skip",
      },
    ],
    layout: {
      // the title sits above the top (tokens) axis, not on its label
      title: { text: opts.title ?? "Loss during fine-tuning", y: 0.98, yanchor: "top" },
      width: opts.width ?? PLOT_SIZE.width,
      height: opts.height ?? PLOT_SIZE.height,
      // whole epochs only, as the book's MaxNLocator(integer=True), and not so many that the labels crowd
      xaxis: { title: { text: "Epochs" }, tick0: 0, dtick: epochTickStep(epochs), rangemode: "tozero", ...(opts.numEpochs ? { range: [0, opts.numEpochs] } : {}) },
      xaxis2: { title: { text: "Tokens seen" }, overlaying: "x", side: "top", rangemode: "tozero" },
      yaxis: { title: { text: label[0].toUpperCase() + label.slice(1) }, ...(opts.yRange ? { range: opts.yRange } : {}) },
      legend: opts.legend === "lower right" ? { x: 1, xanchor: "right", y: 0, yanchor: "bottom" } : { x: 1, xanchor: "right", y: 1 }, // the book's loc="upper right"
      margin: { t: 120 },
    },
  };
}

/** A standalone HTML page for the figure, with plotly.js inlined (no CDN: it opens offline). */
export function figureHtml(figure: PlotlyFigure): string {
  const plotly = fs.readFileSync(plotlyScriptPath(), "utf8");
  // JSON inside <script>: escape "<" so a title cannot close the tag
  const json = JSON.stringify({ data: figure.data, layout: figure.layout ?? {}, config: { displaylogo: false } }).replace(/</g, "\\u003c");
  const layout = figure.layout ?? {};
  const title = (layout.title as { text?: string } | undefined)?.text ?? "plot";
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${title.replace(/[<&>]/g, "")}</title>
<script>${plotly}</script></head>
<body><div id="plot"></div>
<script>var fig = ${json}; Plotly.newPlot("plot", fig.data, fig.layout, fig.config);</script>
</body></html>
`;
}

export interface SavedPlot {
  html: string;
  /** the PNG's path, or null when no image could be made (see `reason`) */
  png: string | null;
  reason?: string;
}

/** Write `<base>.html` and `<base>.png` into `dir`. A missing browser only skips the PNG. */
export async function saveLossPlot(curves: LossCurves, dir: string, base = "loss-plot", opts: LossPlotOptions = {}): Promise<SavedPlot> {
  const figure = lossPlotFigure(curves, opts);
  const html = path.join(dir, `${base}.html`);
  const page = figureHtml(figure);
  writeFileAtomic(html, (fd) => writeAll(fd, page));
  const png = path.join(dir, `${base}.png`);
  const out = await saveFigureImage(figure, png, { format: "png" });
  return out.image !== null ? { html, png } : { html, png: null, reason: out.reason };
}
