// showTable: a danfojs DataFrame (or plain rows) as an HTML table in the notebook, with a
// text rendering beside it for terminals and front ends without HTML.
import { emitBundle, escapeHtml, inNotebook } from "./kernel";

/** What showTable needs from a danfojs DataFrame (checked by shape, so any danfojs build fits). */
export interface DataFrameLike {
  /** a DataFrame's column names; a Series has none (its `name`, if any, heads the one column) */
  columns?: string[];
  name?: string;
  index: (string | number)[];
  values: unknown[][] | unknown[];
}

export type TableInput = DataFrameLike | Record<string, unknown>[];

export interface TableOptions {
  /** Show at most this many rows (default 50); a line says how many were left out. */
  maxRows?: number;
  /** Cut cell text longer than this (default 300 characters) with "…". */
  maxCellChars?: number;
  /** A caption above the table. */
  caption?: string;
  /**
   * The index column: "show" (default; a DataFrame's labels, or 0, 1, 2… for rows), "from1" (rows
   * numbered 1, 2, 3…, for tables whose other columns count from 1, such as epochs) or "hide".
   */
  index?: "show" | "from1" | "hide";
}

interface Grid {
  columns: string[];
  index: string[];
  rows: unknown[][];
}

function isDataFrame(x: unknown): x is DataFrameLike {
  const d = x as DataFrameLike;
  return d != null && !Array.isArray(d) && Array.isArray(d.index) && Array.isArray(d.values);
}

function toGrid(input: TableInput): Grid {
  if (isDataFrame(input)) {
    // a Series has 1-D values: show it as one column
    const rows = input.values.map((r) => (Array.isArray(r) ? r : [r]));
    const columns = Array.isArray(input.columns) && input.columns.length ? input.columns : [typeof input.name === "string" && input.name ? input.name : "value"];
    return { columns, index: input.index.map(String), rows };
  }
  if (Array.isArray(input)) {
    const columns: string[] = [];
    for (const [i, row] of input.entries()) {
      if (row === null || typeof row !== "object") throw new TypeError(`showTable: row ${i} is not an object`);
      for (const k of Object.keys(row)) if (!columns.includes(k)) columns.push(k);
    }
    return { columns, index: input.map((_, i) => String(i)), rows: input.map((r) => columns.map((c) => r[c])) };
  }
  throw new TypeError("showTable: expected a danfojs DataFrame/Series or an array of row objects");
}

function cellText(v: unknown, maxChars: number): string {
  let s: string;
  if (v === null || v === undefined) s = "";
  else if (typeof v === "number") s = Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(6)));
  else if (typeof v === "string") s = v;
  else s = JSON.stringify(v);
  return s.length > maxChars ? s.slice(0, maxChars - 1) + "…" : s;
}

/** The index labels to show, or null when the index is hidden. Only row arrays are renumbered from 1. */
function indexLabels(input: TableInput, grid: Grid, mode: TableOptions["index"]): string[] | null {
  if (mode === "hide") return null;
  if (mode === "from1" && !isDataFrame(input)) return grid.index.map((_, i) => String(i + 1));
  return grid.index;
}

/** A column is numeric (right-aligned, header too) when every value in it that is set is a number. */
function numericColumns(grid: Grid): boolean[] {
  return grid.columns.map((_, c) => {
    const set = grid.rows.map((r) => r[c]).filter((v) => v !== null && v !== undefined && v !== "");
    return set.length > 0 && set.every((v) => typeof v === "number");
  });
}

/**
 * The HTML of a table (class "course-table"). Text columns are left-aligned and numbers right-aligned,
 * each header aligned like its column (Jupyter's own style right-aligns every header). Text wraps at
 * spaces, and where a word is too long for its column (a URL, 155 commas) anywhere inside it, so that no
 * cell can widen the table past the page.
 */
export function tableHtml(input: TableInput, opts: TableOptions = {}): string {
  const grid = toGrid(input);
  const { columns, rows } = grid;
  const index = indexLabels(input, grid, opts.index);
  const numeric = numericColumns(grid);
  const maxRows = opts.maxRows ?? 50;
  const maxChars = opts.maxCellChars ?? 300;
  const shown = rows.slice(0, maxRows);
  const align = (c: number) => (numeric[c] ? "right" : "left");
  const wrap = `white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word`;
  const th = (s: string, c: number) => `<th style="text-align:${align(c)};vertical-align:bottom;${wrap}">${escapeHtml(s)}</th>`;
  const td = (v: unknown, c: number) =>
    `<td style="text-align:${typeof v === "number" ? "right" : align(c)};vertical-align:top;${wrap}">${escapeHtml(cellText(v, maxChars))}</td>`;
  const rowHead = (i: number) => (index ? `<th style="text-align:right;vertical-align:top">${escapeHtml(index[i])}</th>` : "");
  const body = shown.map((r, i) => `<tr>${rowHead(i)}${r.map(td).join("")}</tr>`).join("\n");
  const more = rows.length > shown.length ? `<p><i>… ${rows.length - shown.length} more rows (${rows.length} in all)</i></p>` : "";
  const caption = opts.caption ? `<caption style="text-align:left">${escapeHtml(opts.caption)}</caption>` : "";
  const head = `<tr>${index ? "<th></th>" : ""}${columns.map(th).join("")}</tr>`;
  return `<table class="course-table dataframe" style="max-width:100%">${caption}\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody></table>${more}`;
}

/** A plain-text table (columns padded), for terminals and text-only viewers. */
export function tableText(input: TableInput, opts: TableOptions = {}): string {
  const g = toGrid(input);
  const { columns, rows } = g;
  const index = indexLabels(input, g, opts.index);
  const maxRows = opts.maxRows ?? 50;
  const maxChars = Math.min(opts.maxCellChars ?? 300, 60); // a terminal line is short
  const shown = rows.slice(0, maxRows);
  const cells = (r: unknown[]) => r.map((v) => cellText(v, maxChars).replace(/\n/g, "⏎"));
  const grid = index ? [["", ...columns], ...shown.map((r, i) => [index[i], ...cells(r)])] : [columns, ...shown.map(cells)];
  const widths = grid[0].map((_, c) => Math.max(...grid.map((r) => r[c].length)));
  const lines = grid.map((r) => r.map((s, c) => s.padEnd(widths[c])).join("  ").trimEnd());
  if (opts.caption) lines.unshift(opts.caption);
  if (rows.length > shown.length) lines.push(`… ${rows.length - shown.length} more rows (${rows.length} in all)`);
  return lines.join("\n");
}

/** Show a danfojs DataFrame/Series or rows as a table: HTML in a notebook, text in a terminal. */
export function showTable(input: TableInput, opts: TableOptions = {}): void {
  const text = tableText(input, opts);
  if (!inNotebook() || !emitBundle({ "text/html": tableHtml(input, opts), "text/plain": text })) console.log(text);
}
