// Jupyter the way this course starts it, for `npm run lab` and the tests alike: the course's
// Python environment (python-env.ts), the "TypeScript" kernel registered in a folder of its own
// (never in the system's or the user's Jupyter paths), and JupyterLab served from the repository
// root, so the charts' offline plotly.js (/files/node_modules/plotly.js-dist-min/...) is there.
//
//   npm run lab                     # JupyterLab on the course; open notebooks/ in its file browser
//   npm run lab -- --port=9999      # any further arguments go to `jupyter lab`
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { ensurePythonEnv, PythonEnvError, ROOT } from "./python-env";

/** The folder holding the course's kernelspec (kernels/tslab/kernel.json); goes first on JUPYTER_PATH. */
export const KERNEL_DATA_DIR = path.join(ROOT, ".cache", "jupyter");

/**
 * Write the kernelspec `tslab install` would write, but starting scripts/tslab-kernel.js (tslab
 * with its busy/idle status fixed) with this Node, from this checkout. Returns the data folder.
 */
export function writeKernelspec(dataDir = KERNEL_DATA_DIR): string {
  const kernel = path.join(ROOT, "scripts", "tslab-kernel.js");
  if (!fs.existsSync(path.join(ROOT, "node_modules", "tslab"))) throw new Error("tslab not found in node_modules: run npm install first");
  const dir = path.join(dataDir, "kernels", "tslab");
  fs.mkdirSync(dir, { recursive: true });
  const spec = { argv: [process.execPath, kernel, "kernel", "--config-path", "{connection_file}"], display_name: "TypeScript", language: "typescript" };
  fs.writeFileSync(path.join(dir, "kernel.json"), JSON.stringify(spec, null, 1) + "\n");
  return dataDir;
}

export interface LabCommand {
  command: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The `jupyter lab` command line `npm run lab` runs (the browser test runs the same, plus its own
 * port, token and a private config folder). `python` is the environment's python.
 */
export function labCommand(python: string, extraArgs: string[] = [], env: NodeJS.ProcessEnv = process.env): LabCommand {
  const dataDir = writeKernelspec();
  return {
    command: python,
    // as root (containers, CI), Jupyter refuses to start without --allow-root
    args: ["-m", "jupyter", "lab", ...(process.getuid?.() === 0 ? ["--allow-root"] : []), ...extraArgs],
    cwd: ROOT,
    env: {
      ...env,
      JUPYTER_PATH: [dataDir, env.JUPYTER_PATH].filter(Boolean).join(path.delimiter),
      PATH: [path.dirname(python), env.PATH].filter(Boolean).join(path.delimiter),
    },
  };
}

if (require.main === module) {
  let python: string;
  try {
    python = process.env.NOTEBOOK_PYTHON ?? ensurePythonEnv();
  } catch (e) {
    if (!(e instanceof PythonEnvError)) throw e;
    console.error(`error: ${e.message}`);
    process.exit(1);
  }
  const lab = labCommand(python, process.argv.slice(2));
  console.log(`starting JupyterLab in ${ROOT} (open notebooks/ in its file browser; Ctrl-C stops it)`);
  const child = spawn(lab.command, lab.args, { cwd: lab.cwd, env: lab.env, stdio: "inherit" });
  // Ctrl-C reaches jupyter too (same process group); wait for it to shut its kernels down
  process.on("SIGINT", () => undefined);
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
}
