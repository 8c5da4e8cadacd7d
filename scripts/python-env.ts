// The course's own Python environment for Jupyter: a venv in .cache/python-env (ignored by git)
// with pinned JupyterLab, nbclient and plotly, made by pip on first use and reused while the pins
// are unchanged (a stamp file records what was installed). The notebook tests, the browser test
// and `npm run lab` all use it, so `npm install && npm test` needs only Node and a Python 3 with
// venv, and nothing is installed into the system's or the user's Python or Jupyter.
//
//   npx tsx scripts/python-env.ts      # make (or check) the environment, print its python
//
// Where it cannot be made, `PythonEnvError` carries one line saying what to install.
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

export const ROOT = path.resolve(__dirname, "..");
export const ENV_DIR = path.join(ROOT, ".cache", "python-env");

/**
 * What the environment holds, pinned to versions checked together (Python 3.11, Debian 12):
 * jupyterlab: what learners open the notebooks in (and the browser test drives);
 * nbclient + nbformat: execute the notebooks headless (test/notebooks/execute.py);
 * ipykernel: jupyterlab's own dependency, pinned so the resolver's choice does not drift;
 * plotly: its JupyterLab extension renders application/vnd.plotly.v1+json, as on a learner's machine.
 */
export const PINNED = ["jupyterlab==4.6.4", "nbclient==0.11.0", "nbformat==5.11.1", "ipykernel==7.4.0", "plotly==7.1.0"];

export class PythonEnvError extends Error {}

/** The environment's python (bin/python3, or Scripts\python.exe on Windows). */
export function envPython(dir = ENV_DIR): string {
  return process.platform === "win32" ? path.join(dir, "Scripts", "python.exe") : path.join(dir, "bin", "python3");
}

/** The environment's bin folder (jupyter, jupyter-lab…), for PATH. */
export function envBin(dir = ENV_DIR): string {
  return path.dirname(envPython(dir));
}

interface Stamp {
  python: string;
  packages: string[];
}

function readStamp(file: string): Stamp | null {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as Stamp;
  } catch {
    return null;
  }
}

export interface EnsureOptions {
  /** The python that makes the venv (default: COURSE_BASE_PYTHON, else python3 on PATH). */
  basePython?: string;
  /** The environment's folder (default .cache/python-env; tests use a temp folder). */
  dir?: string;
  /** Environment for the child processes (default process.env; tests pass a PATH without python). */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

/**
 * Make the environment if it is missing or its stamp differs from PINNED, and return its python.
 * Idempotent: a second call with nothing changed only reads the stamp (milliseconds).
 */
export function ensurePythonEnv(opts: EnsureOptions = {}): string {
  const dir = opts.dir ?? ENV_DIR;
  const stampFile = path.join(dir, "course-stamp.json");
  // beside the environment, so a failed attempt's log survives the next attempt's fresh start
  const logFile = path.join(path.dirname(dir), `${path.basename(dir)}.log`);
  const env = opts.env ?? process.env;
  const log = opts.log ?? ((l: string) => console.log(l));
  const base = opts.basePython ?? env.COURSE_BASE_PYTHON ?? (process.platform === "win32" ? "python" : "python3");
  const python = envPython(dir);

  const stamp = readStamp(stampFile);
  if (stamp && fs.existsSync(python) && JSON.stringify(stamp.packages) === JSON.stringify(PINNED)) return python;

  const t0 = Date.now();
  // 1. a Python 3 with the venv module (Debian/Ubuntu ship venv's pip bootstrap separately)
  const probe = spawnSync(base, ["-c", "import sys, venv, ensurepip; print('%d.%d' % sys.version_info[:2])"], { env, encoding: "utf8" });
  if (probe.error) {
    throw new PythonEnvError(`no ${base} found: the notebook tests need Python 3 with venv and pip (Debian/Ubuntu: apt-get install python3 python3-venv python3-pip; elsewhere: python.org), or set NOTEBOOK_PYTHON to a python with nbclient`);
  }
  const version = probe.stdout.trim();
  if (probe.status !== 0 || !/^3\.\d+$/.test(version)) {
    const missing = /No module named '?(\w+)/.exec(probe.stderr)?.[1];
    throw new PythonEnvError(
      missing
        ? `${base} has no ${missing} module: install it (Debian/Ubuntu: apt-get install python3-venv python3-pip), or set COURSE_BASE_PYTHON to another Python 3`
        : `${base} did not run as Python 3 (${(probe.stderr || probe.stdout).trim().split("\n").pop()}): install Python 3 with venv and pip, or set COURSE_BASE_PYTHON`,
    );
  }

  log(`python env: making ${path.relative(ROOT, dir) || dir} with Python ${version}: ${PINNED.join(" ")} (pip, a few minutes once; log in ${path.relative(ROOT, logFile)})`);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const out = fs.openSync(logFile, "w");
  try {
    const run = (cmd: string, args: string[], what: string) => {
      const r = spawnSync(cmd, args, { env: { ...env, PIP_DISABLE_PIP_VERSION_CHECK: "1" }, stdio: ["ignore", out, out] });
      if (r.error || r.status !== 0) {
        throw new PythonEnvError(`${what} failed (${r.error?.message ?? `exit ${r.status}`}): see ${path.relative(ROOT, logFile)}; pip needs the package index (or a PIP_INDEX_URL / pip.conf that reaches one)`);
      }
    };
    run(base, ["-m", "venv", dir], `${base} -m venv ${dir}`);
    run(python, ["-m", "pip", "install", "--no-input", ...PINNED], `pip install ${PINNED.join(" ")}`);
  } finally {
    fs.closeSync(out);
  }
  // written last: a half-made environment (Ctrl-C, pip failure) has no stamp and is made again
  fs.writeFileSync(stampFile, JSON.stringify({ python: version, packages: PINNED } satisfies Stamp, null, 1) + "\n");
  log(`python env: ready in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return python;
}

/**
 * The python the notebook tools run with: NOTEBOOK_PYTHON when set (a python of your own that has
 * nbclient and, for the browser test, jupyterlab), else the course's environment, made if needed.
 */
export function notebookPython(): string {
  return process.env.NOTEBOOK_PYTHON ?? ensurePythonEnv();
}

if (require.main === module) {
  try {
    console.log(ensurePythonEnv());
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exitCode = 1;
  }
}
