// A real JupyterLab for the browser test, started as `npm run lab` starts it (scripts/jupyter.ts:
// the course's Python environment, the course's kernelspec, served from the repository root),
// plus what a test needs: loopback port, random token, a private config folder, no browser of its
// own, the app exposed as window.jupyterapp for the driver, and saves answered without writing, so
// running the notebooks never rewrites the committed files.
// `stop()` always ends the server, its kernels and the temp folder.
import { ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { labCommand } from "../../scripts/jupyter";

export interface JupyterServer {
  /** http://127.0.0.1:<port>/ */
  baseUrl: string;
  token: string;
  /** The URL that opens `relPath` (relative to the server root) in JupyterLab, in a fresh workspace named `workspace`. */
  notebookUrl(relPath: string, workspace: string): string;
  /** Everything the server printed (for a failure report). */
  log(): string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** The python whose JupyterLab runs (the course's environment, or NOTEBOOK_PYTHON). */
  python: string;
  /** Extra environment for the kernels (they inherit the server's). */
  env?: Record<string, string>;
  timeoutMs?: number;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

// Autosave would write the executed notebooks back into notebooks/*.ipynb; this contents
// manager answers saves without writing (the test reads outputs from the page instead).
const CONFIG_PY = `
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

class ReadOnlyContents(AsyncLargeFileManager):
    async def save(self, model, path=""):
        return await self.get(path, content=False)

c.ServerApp.contents_manager_class = ReadOnlyContents
`;

/** Processes whose command line mentions `marker` (the kernels of this server: their connection files are in our temp dir). */
function pidsMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      if (fs.readFileSync(`/proc/${d}/cmdline`, "utf8").includes(marker)) pids.push(Number(d));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startJupyter(opts: StartOptions): Promise<JupyterServer> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "course-browser-jupyter-"));
  fs.mkdirSync(path.join(tmp, "config"), { recursive: true });
  fs.writeFileSync(path.join(tmp, "config", "jupyter_server_config.py"), CONFIG_PY);
  // no "Would you like to get notified about official Jupyter news?" toast over the outputs
  const notify = path.join(tmp, "config", "lab", "user-settings", "@jupyterlab", "apputils-extension");
  fs.mkdirSync(notify, { recursive: true });
  fs.writeFileSync(path.join(notify, "notification.jupyterlab-settings"), JSON.stringify({ fetchNews: "false", checkForUpdates: false }));
  fs.mkdirSync(path.join(tmp, "runtime"), { recursive: true });

  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const lab = labCommand(
    opts.python,
    ["--no-browser", "--ip=127.0.0.1", `--port=${port}`, "--port-retries=0", `--IdentityProvider.token=${token}`, "--LabApp.expose_app_in_browser=True"],
    {
      ...process.env,
      ...opts.env,
      // settings, workspaces and connection files of this run only (the kernelspec comes from labCommand)
      JUPYTER_CONFIG_DIR: path.join(tmp, "config"),
      JUPYTER_RUNTIME_DIR: path.join(tmp, "runtime"),
    },
  );
  let output = "";
  const child: ChildProcess = spawn(lab.command, lab.args, {
    env: lab.env,
    cwd: lab.cwd,
    detached: true /* its own process group, killed as one */,
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout!.on("data", (b) => (output += b));
  child.stderr!.on("data", (b) => (output += b));
  let exited = false;
  child.on("exit", () => (exited = true));

  let stopped: Promise<void> | null = null;
  const stop = () =>
    (stopped ??= (async () => {
      const baseUrl = `http://127.0.0.1:${port}/`;
      // ask the server to shut its kernels down first (they run in their own sessions)
      try {
        const res = await fetch(`${baseUrl}api/kernels?token=${token}`, { signal: AbortSignal.timeout(3000) });
        for (const k of (await res.json()) as { id: string }[]) {
          await fetch(`${baseUrl}api/kernels/${k.id}?token=${token}`, { method: "DELETE", signal: AbortSignal.timeout(5000) }).catch(() => undefined);
        }
      } catch {
        // the server is already gone or hung: the kills below still run
      }
      if (child.pid && !exited) {
        try { process.kill(-child.pid, "SIGTERM"); } catch { /* gone */ }
        for (let i = 0; i < 50 && !exited; i++) await sleep(100);
        if (!exited) try { process.kill(-child.pid, "SIGKILL"); } catch { /* gone */ }
      }
      // any kernel still alive: its command line names a connection file in our temp dir
      for (const pid of pidsMentioning(tmp)) {
        try { process.kill(pid, "SIGTERM"); } catch { /* gone */ }
        await sleep(500);
        if (alive(pid)) try { process.kill(pid, "SIGKILL"); } catch { /* gone */ }
      }
      fs.rmSync(tmp, { recursive: true, force: true });
    })());

  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  try {
    for (;;) {
      if (exited) throw new Error(`jupyter lab exited at start:\n${output.slice(-2000)}`);
      if (Date.now() > deadline) throw new Error(`jupyter lab did not answer on port ${port}:\n${output.slice(-2000)}`);
      try {
        const res = await fetch(`http://127.0.0.1:${port}/api/kernelspecs?token=${token}`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) {
          const specs = (await res.json()) as { kernelspecs: Record<string, unknown> };
          if (!specs.kernelspecs.tslab) throw new Error(`the tslab kernel is not registered: ${Object.keys(specs.kernelspecs).join(", ")}`);
          break;
        }
      } catch (err) {
        if ((err as Error).message.includes("tslab")) throw err;
      }
      await sleep(300);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  const baseUrl = `http://127.0.0.1:${port}/`;
  return {
    baseUrl,
    token,
    notebookUrl: (rel, workspace) => `${baseUrl}lab/workspaces/${encodeURIComponent(workspace)}/tree/${rel.split(path.sep).map(encodeURIComponent).join("/")}?reset&token=${token}`,
    log: () => output,
    stop,
  };
}
