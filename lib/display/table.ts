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

/** The HTML of a table (class "course-table"), long text wrapped, numbers right-aligned. */
export function tableHtml(input: TableInput, opts: TableOptions = {}): string {
  const { columns, index, rows } = toGrid(input);
  const maxRows = opts.maxRows ?? 50;
  const maxChars = opts.maxCellChars ?? 300;
  const shown = rows.slice(0, maxRows);
  const th = (s: string) => `<th>${escapeHtml(s)}</th>`;
  const td = (v: unknown) =>
    `<td style="text-align:${typeof v === "number" ? "right" : "left"};white-space:pre-wrap;vertical-align:top">${escapeHtml(cellText(v, maxChars))}</td>`;
  const body = shown.map((r, i) => `<tr><th>${escapeHtml(index[i])}</th>${r.map(td).join("")}</tr>`).join("\n");
  const more = rows.length > shown.length ? `<p><i>… ${rows.length - shown.length} more rows (${rows.length} in all)</i></p>` : "";
  const caption = opts.caption ? `<caption style="text-align:left">${escapeHtml(opts.caption)}</caption>` : "";
  return `<table class="course-table dataframe">${caption}\n<thead><tr><th></th>${columns.map(th).join("")}</tr></thead>\n<tbody>\n${body}\n</tbody></table>${more}`;
}

/** A plain-text table (columns padded), for terminals and text-only viewers. */
export function tableText(input: TableInput, opts: TableOptions = {}): string {
  const { columns, index, rows } = toGrid(input);
  const maxRows = opts.maxRows ?? 50;
  const maxChars = Math.min(opts.maxCellChars ?? 300, 60); // a terminal line is short
  const shown = rows.slice(0, maxRows);
  const grid = [["", ...columns], ...shown.map((r, i) => [index[i], ...r.map((v) => cellText(v, maxChars).replace(/\n/g, "⏎"))])];
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
