// The display helpers outside a notebook: the HTML/text they build and the terminal fallback.
// (Rendering in a real Jupyter page is checked by test/browser/run.ts.)
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { formatDuration, inNotebook, plotBundle, plotHtml, progressDisplay, progressText, runProgress, tableHtml, tableText, FIGURE_MIME } from "../lib/display";
import { ConfigError } from "../lib/core/errors";

const df = { columns: ["instruction", "tokens"], index: [0, 1], values: [["a <b> & c", 61], ["line1\nline2", 47.25]] };

test("not in a notebook under node's test runner", () => {
  assert.equal(inNotebook(), false);
});

test("tableHtml escapes cells, keeps the index and right-aligns numbers", () => {
  const html = tableHtml(df, { caption: "two" });
  assert.match(html, /<caption[^>]*>two<\/caption>/);
  assert.match(html, /a &lt;b&gt; &amp; c/);
  assert.match(html, /<th[^>]*>1<\/th>/);
  assert.match(html, /text-align:right[^>]*>47.25</);
  assert.equal((html.match(/<tr>/g) ?? []).length, 3); // header + 2 rows
});

test("tableHtml: long words wrap inside their cell, headers align with their column", () => {
  // notebook 06's case: a response of 155 commas, no space to break at
  const rows = [{ epoch: 1, response: ",".repeat(155), loss: 2.5 }, { epoch: 2, response: "short", loss: null }];
  const html = tableHtml(rows);
  const cells = html.match(/<td [^>]*>/g) ?? [];
  assert.equal(cells.length, 6);
  for (const td of cells) assert.match(td, /overflow-wrap:anywhere/, `a cell that cannot wrap: ${td}`);
  assert.match(html, /<table [^>]*style="max-width:100%"/);
  const headers = [...html.matchAll(/<th style="text-align:(\w+)[^>]*>(epoch|response|loss)<\/th>/g)].map((m) => `${m[2]}:${m[1]}`);
  assert.deepEqual(headers, ["epoch:right", "response:left", "loss:right"], "each header aligned like the values below it");
  assert.match(html, /text-align:left[^>]*>,{155}<\/td>/);
});

test("tableHtml/tableText: the index shown from 0, from 1, or hidden", () => {
  const rows = [{ epoch: 1 }, { epoch: 2 }];
  const heads = (html: string) => [...html.matchAll(/<tr><th[^>]*>(\d+)<\/th>/g)].map((m) => m[1]);
  assert.deepEqual(heads(tableHtml(rows)), ["0", "1"]);
  assert.deepEqual(heads(tableHtml(rows, { index: "from1" })), ["1", "2"]);
  const hidden = tableHtml(rows, { index: "hide" });
  assert.deepEqual(heads(hidden), []);
  assert.equal((hidden.match(/<th /g) ?? []).length, 1, "only the column header is left");
  assert.equal(tableText(rows, { index: "hide" }), "epoch\n1\n2");
  assert.equal(tableText(rows, { index: "from1" }), "   epoch\n1  1\n2  2");
  assert.deepEqual(heads(tableHtml(df, { index: "from1" })), ["0", "1"], "a DataFrame keeps its own labels");
});

test("rows of objects, maxRows and maxCellChars", () => {
  const rows = Array.from({ length: 5 }, (_, i) => ({ i, text: "x".repeat(20) }));
  const html = tableHtml(rows, { maxRows: 2, maxCellChars: 5 });
  assert.equal((html.match(/<tr>/g) ?? []).length, 3);
  assert.match(html, /xxxx…/);
  assert.match(html, /3 more rows \(5 in all\)/);
  assert.match(tableText(rows, { maxRows: 2 }), /^\s+i\s+text/);
  assert.throws(() => tableHtml([1 as unknown as Record<string, unknown>]), /row 0 is not an object/);
});

test("progressText gives position, percent, ETA and rate", () => {
  assert.equal(formatDuration(75), "1:15");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(progressText("train", 25, 100, 10, "loss 1.2", false), "train  25/100  25%  [0:10 < 0:30, 2.50 it/s]  loss 1.2");
  assert.equal(progressText("", 100, 100, 40, "", true), "100/100  100%  [0:40, 2.50 it/s]");
});

test("progressDisplay rejects a bad total and runs in a terminal", () => {
  assert.throws(() => progressDisplay(0, "x"), ConfigError);
  const bar = progressDisplay(3, "t", { mode: "terminal" });
  bar.tick();
  bar.tick(5); // clamped to the total
  assert.equal(bar.value, 3);
  bar.done();
});

test("plotBundle: figure JSON (not plotly's mime), offline HTML with no CDN, text; no image when skipped", async () => {
  const fig = { data: [{ x: [1, 2], y: [3, 4], type: "scatter" }], layout: { title: { text: "Loss </script>" } } };
  const { bundle, note } = await plotBundle(fig, { staticImage: false });
  assert.deepEqual((bundle[FIGURE_MIME] as { data: unknown }).data, fig.data);
  assert.equal(bundle["application/vnd.plotly.v1+json"], undefined, "plotly's own mime lets its JupyterLab renderer rewrite the output");
  const html = bundle["text/html"] as string;
  assert.ok(!/cdn|https?:/i.test(html), "no CDN or remote URL in the HTML fallback");
  assert.equal((html.match(/<\/script>/g) ?? []).length, 1, "the figure JSON cannot close the script tag");
  assert.match(html, /files\/node_modules\/plotly\.js-dist-min\/plotly\.min\.js/);
  assert.equal(bundle["image/png"], undefined);
  assert.match(String(note), /skipped/);
  await assert.rejects(plotBundle({} as never), TypeError);
  assert.match(plotHtml(fig, null, "x.js", "id"), /needs JavaScript/); // no image: a text placeholder instead
});

test("a real danfojs DataFrame and Series", () => {
  // danfojs declares its types only in its "exports" map; the runtime module is enough here
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const dfd = require("danfojs");
  const frame = new dfd.DataFrame({ instruction: ["a", "b"], tokens: [3, 4] });
  assert.match(tableHtml(frame), /<th[^>]*>instruction<\/th><th[^>]*>tokens<\/th>/);
  assert.match(tableHtml(frame), /text-align:right[^>]*>4</);
  const series = new dfd.Series([1.5, 2.5], { index: ["x", "y"] });
  const html = tableHtml(series);
  assert.match(html, /<th[^>]*>y<\/th><td[^>]*>2.5</);
});

test("runProgress: no bar until the first report, none at all when disabled; log lines always arrive, in order", () => {
  const lines: string[] = [];
  const off = runProgress("off", { enabled: false, log: (l) => lines.push(l) });
  off.onStep({ step: 0, totalSteps: 3, epoch: 0, loss: 1.5 });
  off.log("Ep 1 (Step 000000): ...");
  off.done();
  assert.deepEqual(lines, ["Ep 1 (Step 000000): ..."]);
  // enabled: the bar (a terminal one here, on stderr) takes the lines while it runs, `log` after it is done
  const seen: string[] = [];
  const realLog = console.log;
  console.log = (l: string) => seen.push(l);
  try {
    const on = runProgress("on", { log: (l) => seen.push(`plain: ${l}`) });
    on.log("before the first step");
    on.onStep({ step: 0, totalSteps: 2, epoch: 0, loss: 2 });
    on.log("during");
    on.done();
    on.onStep({ step: 1, totalSteps: 2, epoch: 0, loss: 1 }); // after done: no new bar
    on.log("after");
  } finally {
    console.log = realLog;
  }
  assert.deepEqual(seen, ["plain: before the first step", "during", "plain: after"]);
});
