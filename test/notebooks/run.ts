// Notebook tests: execute every notebooks/NN-*.ipynb top to bottom with the tslab kernel
// (nbclient from the course's own Python environment, see execute.py and scripts/python-env.ts), fail on any error output, and check each
// notebook's key outputs (checks.ts). The book does the same with `pytest --nbval`.
//
//   npm run test:notebooks            # all notebooks; executed copies go to test-output/notebooks/
//   npm run test:notebooks -- 01 02   # only the notebooks whose names start with these
//   npm run test:notebooks -- path/to/x.ipynb   # any notebook file (checks by its first two characters)
//   npm run notebooks:execute         # the full setting (COURSE_QUICK=0), and save the outputs into notebooks/*.ipynb when all passes
//   COURSE_QUICK=1 npm run notebooks:execute -- --allow-quick 05   # save quick-setting outputs (refused without the flag)
//   COURSE_QUICK=0 COURSE_OFFLINE=0 npm run test:notebooks -- 05   # a reader's settings: full data, GPT-2 if online
//   NOTEBOOK_PYTHON=python3 npm run test:notebooks   # a python of your own with nbclient, instead of .cache/python-env
//
// The last line printed is "N passed, N failed"; the exit status is 1 when anything failed.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { KERNEL_DATA_DIR, writeKernelspec } from "../../scripts/jupyter";
import { notebookPython, PythonEnvError } from "../../scripts/python-env";
import { CHECKS } from "./checks";
import { ExecutedNotebook } from "./notebook";

const ROOT = path.resolve(__dirname, "../..");
const NOTEBOOKS = path.join(ROOT, "notebooks");
const OUT = path.join(ROOT, "test-output", "notebooks");
const CELL_TIMEOUT_S = Number(process.env.NOTEBOOK_CELL_TIMEOUT ?? 1800);

/** The slowest code cell, from the timestamps nbclient records in each cell's metadata. */
function slowestCell(nb: ExecutedNotebook): string {
  let worst = { index: -1, seconds: 0 };
  nb.cells.forEach((c, index) => {
    const t = (c.metadata as { execution?: Record<string, string> }).execution;
    const start = Date.parse(t?.["iopub.status.busy"] ?? "");
    const end = Date.parse(t?.["iopub.status.idle"] ?? "");
    if (end - start > worst.seconds * 1000) worst = { index, seconds: (end - start) / 1000 };
  });
  return worst.index < 0 ? "" : `; slowest: cell ${worst.index}, ${worst.seconds.toFixed(1)}s`;
}

interface Result {
  name: string;
  ok: boolean;
  detail?: string;
}

function main(): number {
  const args = process.argv.slice(2);
  const inPlace = args.includes("--in-place");
  const allowQuick = args.includes("--allow-quick");
  const explicit = args.filter((a) => a.endsWith(".ipynb")).map((a) => path.resolve(a));
  const filters = args.filter((a) => !a.startsWith("--") && !a.endsWith(".ipynb"));
  const files = explicit.length
    ? explicit
    : fs
        .readdirSync(NOTEBOOKS)
        .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
        .filter((f) => filters.length === 0 || filters.some((p) => f.startsWith(p)))
        .sort()
        .map((f) => path.join(NOTEBOOKS, f));

  // Saving outputs (--in-place) runs the full setting unless told otherwise: the committed notebooks carry the
  // full run that their prose describes, and quick outputs are written over them only with --allow-quick.
  const quick = process.env.COURSE_QUICK ?? (inPlace ? "0" : "1");
  if (inPlace && quick === "1" && !allowQuick) {
    console.log("not ok 1 - saving outputs\n    COURSE_QUICK=1 would write quick-setting outputs over the committed full-run ones; add --allow-quick to do that anyway");
    console.log("0 passed, 1 failed");
    return 1;
  }
  // The kernel is registered in a folder of ours (.cache/jupyter), so a fresh machine needs no `tslab install`.
  writeKernelspec();
  let python: string;
  try {
    python = notebookPython();
  } catch (e) {
    if (!(e instanceof PythonEnvError)) throw e;
    console.log(`not ok 1 - a Python for the notebook tests\n    ${e.message}`);
    console.log("0 passed, 1 failed");
    return 1;
  }
  fs.mkdirSync(OUT, { recursive: true });
  // COURSE_OFFLINE=1: the offline path (the tiny config, no downloads); COURSE_QUICK=1: the quick settings of
  // notebooks 05 and 06 (a training subset, 5 test responses), so CI runs them in minutes. Either can be overridden.
  const env = {
    ...process.env,
    COURSE_OFFLINE: process.env.COURSE_OFFLINE ?? "1",
    COURSE_QUICK: quick,
    JUPYTER_PATH: [KERNEL_DATA_DIR, process.env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
  };

  const results: Result[] = [];
  const record = (r: Result) => {
    results.push(r);
    console.log(`${r.ok ? "ok" : "not ok"} ${results.length} - ${r.name}${r.detail ? `\n    ${r.detail.split("\n").join("\n    ")}` : ""}`);
  };
  // the kernel Jupyter starts (scripts/tslab-kernel.js) says "busy" until its last queued cell ends
  const spec = JSON.parse(fs.readFileSync(path.join(KERNEL_DATA_DIR, "kernels", "tslab", "kernel.json"), "utf8")) as { argv: string[] };
  const status = spawnSync(python, [path.join(__dirname, "kernel_status.py"), ...spec.argv], { encoding: "utf8", timeout: 120_000 });
  record({
    name: "the kernel reports busy while any queued cell runs",
    ok: status.status === 0,
    detail: status.status === 0 ? undefined : `${status.stdout}${status.stderr}`.trim().split("\n").slice(-8).join("\n"),
  });
  if (files.length === 0) record({ name: "notebooks found", ok: false, detail: `no notebooks/NN-*.ipynb match ${filters.join(" ") || "*"}` });

  const started = Date.now();
  for (const source of files) {
    const file = path.basename(source);
    const id = file.slice(0, 2);
    const target = path.join(OUT, file);
    const t0 = Date.now();
    const run = spawnSync(python, [path.join(__dirname, "execute.py"), source, target, "--timeout", String(CELL_TIMEOUT_S)], {
      env,
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    if (run.status === null || run.status === 2 || !fs.existsSync(target)) {
      record({ name: `${file} executes (${seconds}s)`, ok: false, detail: (run.error?.message ?? run.stderr ?? "").trim().split("\n").slice(-15).join("\n") });
      continue;
    }
    const nb = ExecutedNotebook.read(target);
    const errors = nb.errors();
    const skipped = nb.unexecuted();
    const clean = run.status === 0 && errors.length === 0 && skipped.length === 0;
    record({
      name: `${file} executes with no error output (${seconds}s${slowestCell(nb)})`,
      ok: clean,
      detail: clean ? undefined : [...new Set([...errors, ...nb.stderr()]), skipped.length ? `cells not run: ${skipped.join(", ")}` : ""].filter(Boolean).join("\n"),
    });
    let allChecks = clean;
    for (const check of CHECKS[id] ?? []) {
      try {
        check.test(nb);
        record({ name: `${id}: ${check.name}`, ok: true });
      } catch (e) {
        allChecks = false;
        record({ name: `${id}: ${check.name}`, ok: false, detail: (e as Error).message });
      }
    }
    if (inPlace && allChecks) {
      // Save what the reader sees; drop the per-run bookkeeping so re-runs give small diffs.
      const json = nb.json;
      delete json.metadata["execution_seconds"];
      for (const c of json.cells) delete (c.metadata as Record<string, unknown>)["execution"];
      fs.writeFileSync(source, JSON.stringify(json, null, 1) + "\n");
      console.log(`    saved outputs into ${path.relative(ROOT, source)}`);
    }
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`# notebooks: ${files.length}, ${((Date.now() - started) / 1000).toFixed(1)}s; executed copies in ${path.relative(ROOT, OUT)}/`);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = main();
