// Reading an executed notebook (.ipynb, nbformat 4) for the notebook tests:
// find cells by tag, collect what a reader sees in their outputs, and list error outputs.
import * as fs from "node:fs";

export interface Output {
  output_type: "stream" | "display_data" | "execute_result" | "error" | "update_display_data";
  name?: "stdout" | "stderr";
  text?: string | string[];
  data?: Record<string, unknown>;
  ename?: string;
  evalue?: string;
  traceback?: string[];
}

export interface Cell {
  cell_type: "code" | "markdown" | "raw";
  source: string | string[];
  metadata: { tags?: string[] };
  outputs?: Output[];
}

export interface NotebookJson {
  cells: Cell[];
  metadata: Record<string, unknown>;
  nbformat: number;
  nbformat_minor: number;
}

const joined = (s: string | string[] | undefined): string => (Array.isArray(s) ? s.join("") : s ?? "");

export class ExecutedNotebook {
  constructor(readonly file: string, readonly json: NotebookJson) {}

  static read(file: string): ExecutedNotebook {
    return new ExecutedNotebook(file, JSON.parse(fs.readFileSync(file, "utf8")) as NotebookJson);
  }

  get cells(): Cell[] {
    return this.json.cells;
  }

  /** The one cell carrying `tag` in its metadata; the checks name cells by tag, not by position. */
  cell(tag: string): Cell {
    const found = this.cells.filter((c) => c.metadata.tags?.includes(tag));
    if (found.length !== 1) throw new Error(`expected one cell tagged "${tag}", found ${found.length}`);
    return found[0];
  }

  /** What a reader sees as text: stdout and the text/plain of results and displays. */
  text(tag: string): string {
    return (this.cell(tag).outputs ?? [])
      .map((o) => (o.output_type === "stream" ? joined(o.text) : joined(o.data?.["text/plain"] as string | string[])))
      .join("");
  }

  /** All text/html outputs of a cell, joined. */
  html(tag: string): string {
    return (this.cell(tag).outputs ?? []).map((o) => joined(o.data?.["text/html"] as string | string[])).join("");
  }

  /** Every output of a cell in a given mime type (e.g. "image/svg+xml"). */
  mime(tag: string, type: string): string[] {
    return (this.cell(tag).outputs ?? []).filter((o) => o.data?.[type] !== undefined).map((o) => joined(o.data?.[type] as string | string[]));
  }

  /**
   * Error outputs, and stderr text that mentions an Error: a notebook a reader runs must not show either.
   * Returned as one line each: "cell 7: TypeError: x is not a function".
   */
  errors(): string[] {
    const found: string[] = [];
    this.cells.forEach((c, i) => {
      for (const o of c.outputs ?? []) {
        if (o.output_type === "error") found.push(`cell ${i}: ${o.ename}: ${o.evalue}`);
        if (o.output_type === "stream" && o.name === "stderr" && /Error/.test(joined(o.text))) {
          found.push(`cell ${i}: stderr: ${joined(o.text).trim().split("\n").slice(0, 3).join(" | ")}`);
        }
      }
    });
    return found;
  }

  /** Everything the cells wrote to stderr (tslab reports compile errors there, without the word "Error"). */
  stderr(): string[] {
    return this.cells.flatMap((c, i) =>
      (c.outputs ?? []).filter((o) => o.output_type === "stream" && o.name === "stderr").map((o) => `cell ${i}: stderr: ${joined(o.text).trim().split("\n").slice(0, 5).join(" | ")}`),
    );
  }

  /** Code cells that did not run (an earlier cell failed, or the kernel stopped). */
  unexecuted(): number[] {
    return this.cells.flatMap((c, i) => (c.cell_type === "code" && (c as { execution_count?: number | null }).execution_count == null && joined(c.source).trim() !== "" ? [i] : []));
  }
}

/** Text with all whitespace removed, so "[[0    , 1" and "[ [ 0, 1" both read "[[0,1". */
export const compact = (s: string): string => s.replace(/\s+/g, "");
