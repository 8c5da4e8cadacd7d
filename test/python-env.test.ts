// The course's Python environment (scripts/python-env.ts): where it cannot be made, one line says
// what to install; once made, it is reused without running Python at all.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { ensurePythonEnv, envPython, PINNED, PythonEnvError } from "../scripts/python-env";

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "course-python-env-"));

/** Run ensurePythonEnv and return the one line it fails with. */
function failure(opts: Parameters<typeof ensurePythonEnv>[0]): string {
  try {
    ensurePythonEnv({ ...opts, log: () => undefined });
  } catch (e) {
    assert.ok(e instanceof PythonEnvError, `expected a PythonEnvError, got ${(e as Error).stack}`);
    return e.message;
  }
  assert.fail("ensurePythonEnv succeeded without a usable python");
}

test("no python3 on PATH: one line naming what to install, and nothing left behind", () => {
  const dir = tmp();
  const msg = failure({ dir: path.join(dir, "env"), env: { PATH: path.join(dir, "empty-bin") } });
  assert.doesNotMatch(msg, /\n/);
  assert.match(msg, /^no python3 found: .*apt-get install python3 python3-venv python3-pip/);
  assert.ok(!fs.existsSync(path.join(dir, "env")));
  fs.rmSync(dir, { recursive: true });
});

test("a python3 without venv/ensurepip (Debian without python3-venv): one line naming python3-venv", { skip: process.platform === "win32" }, () => {
  const dir = tmp();
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  // what Debian's python3 prints for `import ensurepip` when python3-venv is not installed
  fs.writeFileSync(path.join(bin, "python3"), `#!/bin/sh\necho "ModuleNotFoundError: No module named 'ensurepip'" >&2\nexit 1\n`, { mode: 0o755 });
  const msg = failure({ dir: path.join(dir, "env"), env: { PATH: bin } });
  assert.doesNotMatch(msg, /\n/);
  assert.match(msg, /^python3 has no ensurepip module: install it \(Debian\/Ubuntu: apt-get install python3-venv python3-pip\)/);
  fs.rmSync(dir, { recursive: true });
});

test("a made environment whose stamp lists the pinned packages is reused without running any python", () => {
  const dir = path.join(tmp(), "env");
  fs.mkdirSync(path.dirname(envPython(dir)), { recursive: true });
  fs.writeFileSync(envPython(dir), "");
  fs.writeFileSync(path.join(dir, "course-stamp.json"), JSON.stringify({ python: "3.11", packages: PINNED }));
  // PATH has no python: a rebuild would fail
  assert.equal(ensurePythonEnv({ dir, env: { PATH: "/nonexistent" }, log: () => undefined }), envPython(dir));
  // a changed pin list is a rebuild (which here fails for want of python, proving it was attempted)
  fs.writeFileSync(path.join(dir, "course-stamp.json"), JSON.stringify({ python: "3.11", packages: ["jupyterlab==4.0.0"] }));
  assert.match(failure({ dir, env: { PATH: "/nonexistent" } }), /^no python3 found/);
  fs.rmSync(path.dirname(dir), { recursive: true });
});
