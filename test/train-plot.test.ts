// The loss plot: the book's two curves against epochs, tokens seen on a second x axis,
// and an HTML file that carries plotly.js itself (opens offline).
import { test } from "node:test";
import assert from "node:assert/strict";
import { bookEpochsSeen, figureHtml, lossPlotFigure } from "../lib/display/loss-plot";

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

test("the book's epoch positions: linspace(0, numEpochs, n)", () => {
  assert.deepEqual(bookEpochsSeen(2, 5), [0, 0.5, 1, 1.5, 2]);
  assert.deepEqual(lossPlotFigure(curves, { epochsSeen: bookEpochsSeen(2, 3) }).data[0].x, [0, 1, 2]);
});

test("the HTML page inlines plotly (no CDN) and escapes the title", () => {
  const html = figureHtml(lossPlotFigure(curves, { title: "a </script> title" }));
  assert.ok(!/<script src=/i.test(html));
  assert.ok(html.length > 1_000_000, "plotly.min.js should be inside the page");
  assert.ok(!html.includes("a </script> title"));
  assert.match(html, /Plotly\.newPlot\("plot"/);
});
