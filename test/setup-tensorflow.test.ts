// npm run setup:tensorflow: the wheel it picks per platform, and its one-line errors when a tool is
// missing (spawned with a PATH that lacks it; each check comes before anything is changed on disk).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ConfigError } from "../lib/core/errors";
import { TF_WHEEL_VERSION, wheelTarget } from "../lib/cli/libtensorflow-wheel";

const ROOT = path.resolve(__dirname, "..");
const SCRIPT = path.join(ROOT, "lib", "cli", "setup-tensorflow.ts");
const TSX_CLI = path.join(ROOT, "node_modules", "tsx", "dist", "cli.mjs");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "setup-tf-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A PATH holding only the named commands (symlinks to the real ones). */
function pathWith(name: string, commands: string[]): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  for (const c of commands) {
    // python3 may be a shim script (pyenv) that needs more of the PATH: link the interpreter itself
    const real = c === "python3"
      ? spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).stdout.trim()
      : spawnSync("sh", ["-c", `command -v ${c}`], { encoding: "utf8" }).stdout.trim();
    if (real) fs.symlinkSync(real, path.join(dir, c));
  }
  return dir;
}

function setup(pathDir: string, extraEnv: Record<string, string> = {}) {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: pathDir, ...extraEnv };
  delete env.npm_execpath;
  delete env.COURSE_SETUP_PYTHON;
  delete env.CXX;
  return spawnSync(process.execPath, [TSX_CLI, SCRIPT, "--force"], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
}

test("the wheel: tensorflow-cpu for manylinux x86-64; other platforms are a one-line ConfigError", () => {
  const t = wheelTarget("linux", "x64");
  assert.equal(t.project, "tensorflow-cpu");
  assert.ok(t.platforms.every((p) => p.endsWith("x86_64")));
  assert.match(TF_WHEEL_VERSION, /^2\.\d+\.\d+$/);
  for (const [osName, cpu] of [["darwin", "arm64"], ["win32", "x64"], ["linux", "arm64"]]) {
    assert.throws(() => wheelTarget(osName, cpu), (e: Error) => e instanceof ConfigError && e.message.startsWith(`unsupported platform ${osName}-${cpu}`) && !e.message.includes("\n"));
  }
});

test("no Python with pip: one error line, exit code 1", () => {
  const r = setup(pathWith("no-python", ["node"]));
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr.trim(), /^error: no Python with pip found \(tried python3, python\)[^\n]*$/);
});

test("no compiler: one error line naming make and g++, exit code 1", (t) => {
  const dir = pathWith("no-compiler", ["node", "python3"]);
  if (spawnSync(path.join(dir, "python3"), ["-m", "pip", "--version"], { stdio: "ignore" }).status !== 0) return t.skip("python3 here has no pip");
  const r = setup(dir);
  assert.equal(r.status, 1, r.stderr + r.stdout);
  assert.match(r.stderr.trim(), /^error: make and g\+\+ not found on the PATH[^\n]*$/);
});
