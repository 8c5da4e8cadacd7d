// The notebook test harness itself (test/notebooks/): reading percent-format sources, finding
// errors in executed notebooks, and the committed notebooks staying in step with their sources.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { parsePercent } from "./notebooks/build";
import { compact, ExecutedNotebook, NotebookJson } from "./notebooks/notebook";

const NOTEBOOKS = path.resolve(__dirname, "..", "notebooks");

test("percent format: markdown and code cells, tags, blank lines trimmed", () => {
  const cells = parsePercent(
    ["// %% [markdown]", "// # Title", "//", "// text", "", "// %%", 'import "tsx/cjs";', "", '// %% tags=["a", "b"]', "const x = 1; // a comment", ""].join("\n"),
    "07",
  );
  assert.equal(cells.length, 3);
  assert.deepEqual(cells.map((c) => c.cell_type), ["markdown", "code", "code"]);
  assert.deepEqual(cells[0].source, ["# Title\n", "\n", "text"]);
  assert.deepEqual(cells[1].source, ['import "tsx/cjs";']);
  assert.deepEqual(cells[2].metadata, { tags: ["a", "b"] });
  assert.deepEqual(cells[2].source, ["const x = 1; // a comment"]);
  assert.deepEqual(cells.map((c) => c.id), ["07-0", "07-1", "07-2"]);
});

const executed = (outputs: unknown[][]): ExecutedNotebook =>
  new ExecutedNotebook("x.ipynb", {
    cells: outputs.map((o, i) => ({ cell_type: "code", source: "1", metadata: { tags: [`t${i}`] }, outputs: o, execution_count: i + 1 })),
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  } as NotebookJson);

test("errors: error outputs and stderr mentioning an Error are found, plain stderr is not an error", () => {
  const nb = executed([
    [{ output_type: "stream", name: "stdout", text: ["ok\n"] }],
    [{ output_type: "error", ename: "TypeError", evalue: "x is not a function", traceback: [] }],
    [{ output_type: "stream", name: "stderr", text: "RangeError: too big\n" }],
    [{ output_type: "stream", name: "stderr", text: "a warning\n" }],
  ]);
  assert.deepEqual(nb.errors(), ["cell 1: TypeError: x is not a function", "cell 2: stderr: RangeError: too big"]);
  assert.equal(nb.stderr().length, 2);
  assert.equal(nb.text("t0"), "ok\n");
  assert.throws(() => nb.text("missing"), /expected one cell tagged "missing", found 0/);
  assert.equal(compact("[[0    , 1],\n [2, 3]]"), "[[0,1],[2,3]]");
});

test("every committed notebook is built from its source in notebooks/src (edit the source, rebuild, execute)", () => {
  const sources = fs.readdirSync(path.join(NOTEBOOKS, "src")).filter((f) => /^\d\d-.*\.ts$/.test(f));
  assert.ok(sources.length >= 3, "no notebook sources");
  for (const src of sources) {
    const ipynb = path.join(NOTEBOOKS, src.replace(/\.ts$/, ".ipynb"));
    assert.ok(fs.existsSync(ipynb), `notebooks/src/${src} has no notebook: npx tsx test/notebooks/build.ts ${src.slice(0, 2)}`);
    const committed = (JSON.parse(fs.readFileSync(ipynb, "utf8")) as NotebookJson).cells;
    const built = parsePercent(fs.readFileSync(path.join(NOTEBOOKS, "src", src), "utf8"), src.slice(0, 2));
    const text = (c: { cell_type: string; source: string | string[] }) => `${c.cell_type}: ${([] as string[]).concat(c.source).join("")}`;
    assert.deepEqual(
      committed.map(text),
      built.map(text),
      `${path.basename(ipynb)} differs from notebooks/src/${src}: edit the source, then npx tsx test/notebooks/build.ts ${src.slice(0, 2)} && npm run notebooks:execute -- ${src.slice(0, 2)}`,
    );
    const unrun = committed.filter((c) => c.cell_type === "code" && (c as { execution_count?: number | null }).execution_count == null);
    assert.equal(unrun.length, 0, `${path.basename(ipynb)} is committed without its outputs: npm run notebooks:execute -- ${src.slice(0, 2)}`);
  }
});
