/**
 * Runs the bench's reference, test/reference/torch_bench.py, on a job that lib/cli/bench.ts wrote: the
 * Python is $COURSE_PYTHON, else $COURSE_HF_PYTHON, else the project's .cache/venv (pip's newest torch and
 * transformers; .ci/run makes it and exports it as $COURSE_HF_PYTHON), else `python3` on the PATH.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";

const VENV_PYTHON = path.resolve(__dirname, "..", "..", ".cache", "venv", "bin", "python");
const TORCH_SCRIPT = path.resolve(__dirname, "..", "..", "test", "reference", "torch_bench.py");

/** The Python that runs the reference (see the file comment). */
export const torchPython = () => process.env.COURSE_PYTHON || process.env.COURSE_HF_PYTHON || (fs.existsSync(VENV_PYTHON) ? VENV_PYTHON : "python3");

/** Run torch_bench.py on `job`; its JSON line, or `{ skipped: why }`. `what` says what it runs on, for the progress line. */
export function runTorchBench(job: object, what: string, say: (line: string) => void): Record<string, unknown> {
  return runReference(TORCH_SCRIPT, job, what, say);
}

/** The Python for a reference that needs transformers: $COURSE_HF_PYTHON, else .cache/venv, else as torchPython. */
export const hfPython = () => process.env.COURSE_HF_PYTHON || (fs.existsSync(VENV_PYTHON) ? VENV_PYTHON : torchPython());

/** Run a transformers reference script of test/reference/ (`name`, e.g. "hf_responses.py") on `job` with hfPython(), as runTorchBench does. */
export function runReferenceScript(name: string, job: object, what: string, say: (line: string) => void): Record<string, unknown> {
  return runReference(path.join(path.dirname(TORCH_SCRIPT), name), job, what, say, hfPython());
}

function runReference(script: string, job: object, what: string, say: (line: string) => void, python = torchPython()): Record<string, unknown> {
  const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.error) return { skipped: `${python} not found (set COURSE_PYTHON to a Python with torch)` };
  if (probe.status !== 0) return { skipped: `torch is not installed for ${python} (set COURSE_PYTHON to a Python with torch)` };
  const file = path.join(os.tmpdir(), `course-bench-${process.pid}.json`);
  writeFileAtomic(file, (fd) => writeAll(fd, JSON.stringify(job)));
  say(`torch: running ${path.relative(process.cwd(), script)} on ${what}`);
  try {
    const run = spawnSync(python, [script, file, "--threads", String(os.cpus().length)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"], // its progress lines go straight to our stderr
      maxBuffer: 64 * 2 ** 20,
    });
    const last = run.stdout.trim().split("\n").pop() ?? "";
    if (run.status !== 0 || !last.startsWith("{")) return { skipped: `${path.basename(script)} failed (exit ${run.status})` };
    return JSON.parse(last) as Record<string, unknown>;
  } finally {
    fs.rmSync(file, { force: true });
  }
}
