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
  const python = torchPython();
  const probe = spawnSync(python, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.error) return { skipped: `${python} not found (set COURSE_PYTHON to a Python with torch)` };
  if (probe.status !== 0) return { skipped: `torch is not installed for ${python} (set COURSE_PYTHON to a Python with torch)` };
  const file = path.join(os.tmpdir(), `course-bench-${process.pid}.json`);
  writeFileAtomic(file, (fd) => writeAll(fd, JSON.stringify(job)));
  say(`torch: running ${path.relative(process.cwd(), TORCH_SCRIPT)} on ${what}`);
  try {
    const run = spawnSync(python, [TORCH_SCRIPT, file, "--threads", String(os.cpus().length)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"], // its progress lines go straight to our stderr
      maxBuffer: 16 * 2 ** 20,
    });
    const last = run.stdout.trim().split("\n").pop() ?? "";
    if (run.status !== 0 || !last.startsWith("{")) return { skipped: `torch_bench.py failed (exit ${run.status})` };
    return JSON.parse(last) as Record<string, unknown>;
  } finally {
    fs.rmSync(file, { force: true });
  }
}
