// Build notebooks/NN-*.ipynb from their plain-text sources in notebooks/src/NN-*.ts
// (the "percent" format jupytext reads: `// %% [markdown]` starts a prose cell whose lines
// are `// ` comments, `// %%` starts a code cell, `// %% tags=["split-sizes"]` tags it for
// the checks in checks.ts). The built notebooks have no outputs: run
// `npm run notebooks:execute` afterwards to fill them in.
//
//   npx tsx test/notebooks/build.ts          # all
//   npx tsx test/notebooks/build.ts 02       # only 02-*
import * as fs from "node:fs";
import * as path from "node:path";
import type { Cell, NotebookJson } from "./notebook";

const ROOT = path.resolve(__dirname, "../..");
const SRC = path.join(ROOT, "notebooks", "src");

/** Split a percent-format source into cells (ids are stable: notebook number + index). */
export function parsePercent(text: string, id: string): (Cell & { id: string })[] {
  const cells: (Cell & { id: string })[] = [];
  let current: { type: "code" | "markdown"; tags: string[]; lines: string[] } | null = null;
  const flush = () => {
    if (!current) return;
    while (current.lines.length && current.lines[current.lines.length - 1].trim() === "") current.lines.pop();
    while (current.lines.length && current.lines[0].trim() === "") current.lines.shift();
    const source = current.lines.map((l, i) => (i < current!.lines.length - 1 ? l + "\n" : l));
    const metadata = current.tags.length ? { tags: current.tags } : {};
    const cell = current.type === "code"
      ? { id: `${id}-${cells.length}`, cell_type: "code" as const, source, metadata, outputs: [], execution_count: null }
      : { id: `${id}-${cells.length}`, cell_type: "markdown" as const, source, metadata };
    cells.push(cell);
  };
  for (const line of text.split("\n")) {
    const m = /^\/\/ %%( \[markdown\])?(?: tags=(\[.*\]))?\s*$/.exec(line);
    if (m) {
      flush();
      current = { type: m[1] ? "markdown" : "code", tags: m[2] ? (JSON.parse(m[2]) as string[]) : [], lines: [] };
    } else if (current) {
      current.lines.push(current.type === "markdown" ? line.replace(/^\/\/ ?/, "") : line);
    }
  }
  flush();
  return cells;
}

function build(file: string): void {
  const id = file.slice(0, 2);
  const nb: NotebookJson = {
    cells: parsePercent(fs.readFileSync(path.join(SRC, file), "utf8"), id),
    metadata: {
      kernelspec: { name: "tslab", display_name: "TypeScript", language: "typescript" },
      language_info: { name: "typescript", file_extension: ".ts", mimetype: "text/typescript", codemirror_mode: { name: "javascript", typescript: true } },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
  const target = path.join(ROOT, "notebooks", file.replace(/\.ts$/, ".ipynb"));
  fs.writeFileSync(target, JSON.stringify(nb, null, 1) + "\n");
  console.log(`built ${path.relative(ROOT, target)} (${nb.cells.length} cells)`);
}

if (require.main === module) {
  const filters = process.argv.slice(2);
  for (const f of fs.readdirSync(SRC).filter((f) => /^\d\d-.*\.ts$/.test(f)).sort()) {
    if (filters.length === 0 || filters.some((p) => f.startsWith(p))) build(f);
  }
}
