// The loss plot: the book's two curves against epochs, tokens seen on a second x axis,
// and an HTML file that carries plotly.js itself (opens offline).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PLOT_SIZE } from "../lib/core/book";
import { epochTickStep, figureHtml, lossPlotFigure, saveLossPlot } from "../lib/display/loss-plot";

const curves = { trainLosses: [3, 2, 1.5], valLosses: [3.1, 2.4, 2.2], tokensSeen: [500, 3000, 5500], epochsAt: [0.1, 1.0, 1.9] };

test("train and val loss on the epochs axis, an invisible trace laying out the tokens axis on top", () => {
  const fig = lossPlotFigure(curves, { numEpochs: 2 });
  const [train, val, tokens] = fig.data;
  assert.deepEqual([train.name, val.name], ["Training loss", "Validation loss"]);
  assert.deepEqual(train.x, curves.epochsAt);
  assert.deepEqual(val.y, curves.valLosses);
  assert.deepEqual((val.line as { dash: string }).dash, "dashdot");
  assert.deepEqual(tokens.x, curves.tokensSeen);
  assert.equal(tokens.xaxis, "x2");
  assert.equal(tokens.opacity, 0);
  const layout = fig.layout as Record<string, Record<string, unknown>>;
  assert.equal(layout.xaxis2.overlaying, "x");
  assert.equal(layout.xaxis2.side, "top");
  assert.deepEqual(layout.xaxis.range, [0, 2]);
  assert.equal(layout.yaxis.range, undefined, "the loss axis shows everything unless asked");
  const zoomed = lossPlotFigure(curves, { yRange: [0, 2.5] }).layout as Record<string, Record<string, unknown>>;
  assert.deepEqual(zoomed.yaxis.range, [0, 2.5]);
});

test("epochsSeen places the points on the epoch axis instead of the history's epochsAt", () => {
  const fig = lossPlotFigure(curves, { epochsSeen: [0, 1, 2] });
  assert.deepEqual(fig.data[0].x, [0, 1, 2]);
  assert.deepEqual(fig.data[1].x, [0, 1, 2]);
});

test("the HTML page inlines plotly (no CDN) and escapes the title", () => {
  const html = figureHtml(lossPlotFigure(curves, { title: "a </script> title" }));
  assert.ok(!/<script src=/i.test(html));
  assert.ok(html.length > 1_000_000, "plotly.min.js should be inside the page");
  assert.ok(!html.includes("a </script> title"));
  assert.match(html, /Plotly\.newPlot\("plot"/);
});

test("the chart is PLOT_SIZE unless asked otherwise", () => {
  const layout = lossPlotFigure(curves).layout as Record<string, unknown>;
  assert.deepEqual([layout.width, layout.height], [PLOT_SIZE.width, PLOT_SIZE.height]);
  const small = lossPlotFigure(curves, { width: 300, height: 200 }).layout as Record<string, unknown>;
  assert.deepEqual([small.width, small.height], [300, 200]);
});

test("saveLossPlot replaces the HTML page whole and leaves no temporary file", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "loss-plot-"));
  const saved = process.env.COURSE_NO_STATIC_IMAGE;
  process.env.COURSE_NO_STATIC_IMAGE = "1"; // no browser here: only the HTML is written
  try {
    fs.writeFileSync(path.join(dir, "loss-plot.html"), "an older, longer page ".repeat(1_000_000));
    const out = await saveLossPlot(curves, dir, "loss-plot", { title: "run 2" });
    assert.equal(out.png, null);
    assert.match(out.reason ?? "", /COURSE_NO_STATIC_IMAGE/);
    assert.equal(fs.readFileSync(out.html, "utf8"), figureHtml(lossPlotFigure(curves, { title: "run 2" })));
    assert.deepEqual(fs.readdirSync(dir), ["loss-plot.html"]);
  } finally {
    if (saved === undefined) delete process.env.COURSE_NO_STATIC_IMAGE;
    else process.env.COURSE_NO_STATIC_IMAGE = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("the epoch axis keeps at most 10 whole-epoch ticks (40 epochs: every 5th), the label names both curves and the axis, the legend takes a corner", () => {
  assert.deepEqual([1, 2, 10, 11, 20, 40, 100, 101].map(epochTickStep), [1, 1, 1, 2, 2, 5, 10, 20]);
  const forty = lossPlotFigure(curves, { numEpochs: 40 });
  assert.equal((forty.layout?.xaxis as { dtick: number }).dtick, 5);
  assert.equal((lossPlotFigure(curves, { numEpochs: 2 }).layout?.xaxis as { dtick: number }).dtick, 1);
  const margins = lossPlotFigure(curves, { label: "reward margins" });
  assert.deepEqual(margins.data.slice(0, 2).map((t) => (t as { name: string }).name), ["Training reward margins", "Validation reward margins"]);
  assert.equal((margins.layout?.yaxis as { title: { text: string } }).title.text, "Reward margins");
  // the book's legend in the upper right, or out of the way of rising curves
  assert.deepEqual(margins.layout?.legend, { x: 1, xanchor: "right", y: 1 });
  assert.deepEqual(lossPlotFigure(curves, { legend: "lower right" }).layout?.legend, { x: 1, xanchor: "right", y: 0, yanchor: "bottom" });
});
