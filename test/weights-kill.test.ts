// A save killed with SIGKILL (kill -9) at any moment leaves the previous save loadable,
// and the next save removes the dead writer's temporary file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/model/weights";
import { tempDir } from "./helpers/hf-checkpoint";

const root = tempDir("kill");
const CHILD = path.join(__dirname, "helpers", "save-then-die.ts");
before(async () => {
  await initEngine({ log: () => {} });
});
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); // never leave one running
  fs.rmSync(root, { recursive: true, force: true });
});

/** The child runs in this very process id (node with tsx's loader, no tsx wrapper process),
 *  so SIGKILL reaches the writer itself. */
function startChild(dir: string, mode: string): ChildProcess {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, dir, mode], {
    cwd: path.join(__dirname, ".."),
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err = (err + d.toString()).slice(-2000)));
  child.on("exit", (code) => {
    if (code) console.error(`save-then-die exited with ${code}: ${err}`);
  });
  return child;
}

const exited = (child: ChildProcess) =>
  new Promise<NodeJS.Signals | null>((resolve) => child.on("exit", (_code, signal) => resolve(signal)));

const temps = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));

test("killed halfway through model.safetensors: the previous save is intact and loads", async () => {
  const dir = path.join(root, "mid");
  const signal = await exited(startChild(dir, "mid-write"));
  assert.equal(signal, "SIGKILL");
  assert.equal(temps(dir).length, 1, "the kill landed while the temporary file was being written");
  assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), fs.readFileSync(path.join(`${dir}-first`, "model.safetensors")));
  const model = await loadGPT2Directory(dir);
  assert.deepEqual(Array.from(model.param("tokEmb.weight").dataSync().slice(0, 4)), [0, 0, 0, 0]); // not the half-saved ones
  // the next save cleans up after the dead writer
  await saveGPT2Directory(model, dir);
  assert.deepEqual(temps(dir), []);
  model.dispose();
});

test("killed at arbitrary moments while saving in a loop: the folder always loads", async () => {
  const dir = path.join(root, "loop");
  for (const delayMs of [0, 3, 11, 29]) {
    const child = startChild(dir, "loop");
    const done = exited(child);
    await new Promise<void>((resolve) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("saved 2")) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill("SIGKILL");
    assert.equal(await done, "SIGKILL");
    const model = await loadGPT2Directory(dir);
    assert.ok(model.param("finalNorm.shift").dataSync()[0] >= 1);
    model.dispose();
  }
});
