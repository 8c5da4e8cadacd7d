// showPlot: a plotly chart as ONE notebook output carrying three renderings, so each front
// end picks the best it can show:
//   text/html      the static image, replaced by the interactive chart when the page runs scripts
//                  (JupyterLab, the classic Notebook). plotly.js is loaded once per page from the Jupyter
//                  server itself (/files/...), never a CDN, so it works offline and keeps the saved
//                  notebook small (inlining plotly.min.js would add 4.8 MB per chart);
//   image/png      GitHub's viewer, nbconvert and VS Code, which run no page scripts;
//   FIGURE_MIME    the figure itself (data and layout), for tests and tools. Deliberately not plotly's
//                  own "application/vnd.plotly.v1+json": with plotly's JupyterLab extension installed,
//                  that one wins over text/html, shows the PNG until the mouse passes, then redraws with
//                  its own plotly.js (other axis ticks) and writes a new PNG into the notebook, so merely
//                  reading a notebook marked it changed.
import * as path from "path";
import { PLOT_SIZE } from "../core/book";
import { emitBundle, escapeHtml, inNotebook, MimeBundle } from "./kernel";
import { FigureImageOptions, PlotlyFigure, plotlyScriptPath, renderFigureImage } from "./figure-image";

/** The figure JSON in a chart output (see above for why not plotly's own mime type). */
export const FIGURE_MIME = "application/vnd.course.figure+json";

export interface ShowPlotOptions extends FigureImageOptions {
  /** Skip the static image (faster; GitHub will then show nothing for this chart). */
  staticImage?: boolean;
}

let plotCounter = 0;

// JSON that can sit inside <script>: no "</script>" and no JS-breaking line separators.
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/**
 * The text/html part. `plotlyFromNotebookDir` is the path of plotly.min.js relative to the
 * kernel's working directory, which Jupyter sets to the notebook's folder; the page turns it
 * into a /files/ URL of the server it was loaded from.
 */
export function plotHtml(figure: PlotlyFigure, pngBase64: string | null, plotlyFromNotebookDir: string, id: string): string {
  const layout = figure.layout ?? {};
  const width = typeof layout.width === "number" ? layout.width : PLOT_SIZE.width;
  const title = typeof layout.title === "string" ? layout.title : (layout.title as { text?: string } | undefined)?.text ?? "plotly chart";
  const fallback = pngBase64
    ? `<img src="data:image/png;base64,${pngBase64}" alt="${escapeHtml(String(title))}" style="max-width:100%">`
    : `<pre>${escapeHtml(String(title))} (interactive chart: needs JavaScript)</pre>`;
  // The chart's div is looked up by id; a front end may run the script a moment before the
  // output is in the document (JupyterLab), so look again for up to two seconds.
  const script = `(function (id, me) {
  function find() { return document.getElementById(id) || (me && me.parentNode && me.parentNode.querySelector("[id='" + id + "']")); }
  var tries = 0;
  (function wait() { var el = find(); if (el) start(el); else if (tries++ < 40) setTimeout(wait, 50); })();
  function start(el) {
  var fig = ${scriptJson({ data: figure.data, layout: { ...layout, autosize: true }, config: { responsive: true, displaylogo: false, ...(figure.config ?? {}) } })};
  function draw(P) { el.innerHTML = ""; el.style.height = (fig.layout.height || ${PLOT_SIZE.height}) + "px"; P.newPlot(el, fig.data, fig.layout, fig.config); }
  if (window.Plotly) { draw(window.Plotly); return; }
  // Where is the Jupyter server's file handler? classic Notebook: <body data-base-url data-notebook-path>;
  // JupyterLab: #jupyter-config-data and the /lab/tree/<path> URL.
  var base = (document.body && document.body.getAttribute("data-base-url")) || "/";
  var nbPath = (document.body && document.body.getAttribute("data-notebook-path")) || "";
  var cfg = document.getElementById("jupyter-config-data");
  if (cfg) { try { base = JSON.parse(cfg.textContent).baseUrl || base; } catch (e) {} }
  if (!nbPath) { var m = /\\/tree\\/(.*)$/.exec(decodeURIComponent(location.pathname)); if (m) nbPath = m[1]; }
  function norm(p) { var out = []; p.split("/").forEach(function (s) { if (s === "..") out.pop(); else if (s && s !== ".") out.push(s); }); return out.join("/"); }
  var dir = nbPath.split("/").slice(0, -1).join("/");
  var urls = [base + "files/" + norm(dir + "/" + ${scriptJson(plotlyFromNotebookDir.split(path.sep).join("/"))}),
              base + "files/node_modules/plotly.js-dist-min/plotly.min.js"];
  // one load per page, shared by every chart on it
  var w = window;
  if (!w.__coursePlotly) {
    w.__coursePlotly = new Promise(function (resolve, reject) {
      function tryUrl(i) {
        if (i >= urls.length) { reject(new Error("plotly.js not found on the server")); return; }
        if (typeof w.requirejs === "function") {
          // classic Notebook has RequireJS: plotly 2 registers as an AMD module there,
          // plotly 3 ignores AMD and sets window.Plotly
          var name = "course_plotly_" + i;
          var paths = {}; paths[name] = urls[i].replace(/\\.js$/, "");
          w.requirejs.config({ paths: paths });
          w.requirejs([name], function (P) {
            P = P || w.Plotly;
            if (P && P.newPlot) { w.Plotly = P; resolve(P); } else tryUrl(i + 1);
          }, function () { w.requirejs.undef(name); tryUrl(i + 1); });
        } else {
          var s = document.createElement("script");
          s.src = urls[i];
          s.onload = function () { w.Plotly && w.Plotly.newPlot ? resolve(w.Plotly) : tryUrl(i + 1); };
          s.onerror = function () { tryUrl(i + 1); };
          document.head.appendChild(s);
        }
      }
      tryUrl(0);
    });
  }
  // on failure the static image stays: the chart is still there, just not interactive
  w.__coursePlotly.then(draw, function (e) { w.__coursePlotly = null; console.warn("showPlot:", e.message); });
  }
})(${scriptJson(id)}, document.currentScript);`;
  return `<div id="${escapeHtml(id)}" class="course-plot" style="width:${width}px;max-width:100%">${fallback}</div>\n<script type="text/javascript">\n${script}\n</script>`;
}

/** Build the mime bundle of a chart (exported for tests and for saving outputs by hand). */
export async function plotBundle(figure: PlotlyFigure, opts: ShowPlotOptions = {}): Promise<{ bundle: MimeBundle; note?: string }> {
  if (!figure || !Array.isArray(figure.data)) throw new TypeError("showPlot: figure.data must be an array of plotly traces");
  const img = opts.staticImage === false ? { image: null, reason: "static image skipped (staticImage: false)" } : await renderFigureImage(figure, { ...opts, format: "png" });
  const png = img.image instanceof Buffer ? img.image.toString("base64") : null;
  const id = `course-plot-${process.pid}-${Date.now().toString(36)}-${plotCounter++}`;
  const rel = path.relative(process.cwd(), plotlyScriptPath());
  const layout = figure.layout ?? {};
  const title = typeof layout.title === "string" ? layout.title : (layout.title as { text?: string } | undefined)?.text;
  const bundle: MimeBundle = {
    [FIGURE_MIME]: { data: figure.data, layout, ...(figure.config ? { config: figure.config } : {}) },
    "text/html": plotHtml(figure, png, rel, id),
    "text/plain": `<plotly chart${title ? `: ${title}` : ""}, ${figure.data.length} trace(s)${png ? "" : `; no static image: ${img.reason}`}>`,
  };
  if (png) bundle["image/png"] = png;
  return { bundle, note: png ? undefined : img.reason };
}

/**
 * Show a plotly figure in the notebook. Outside a notebook (a script, a test) it prints one line
 * instead, so library code can call it freely; save the chart to files with the plot helpers.
 */
export async function showPlot(figure: PlotlyFigure, opts: ShowPlotOptions = {}): Promise<void> {
  if (!inNotebook()) {
    console.log(`[plot] ${figure.data.length} trace(s) (charts are shown in a notebook)`);
    return;
  }
  const { bundle } = await plotBundle(figure, opts);
  emitBundle(bundle);
}
