// A save killed with SIGKILL (kill -9) at any moment leaves the previous save loadable,
// and the next save removes the dead writer's temporary file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { tempDir } from "./helpers/hf-checkpoint";
import { killSavers, startSaver } from "./helpers/saver-child";

const root = tempDir("kill");
before(async () => {
  await initEngine({ log: () => {} });
});
after(() => {
  killSavers();
  fs.rmSync(root, { recursive: true, force: true });
});

const temps = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".tmp"));

test("killed halfway through model.safetensors: the previous save is intact and loads", async () => {
  const dir = path.join(root, "mid");
  const signal = await startSaver([dir, "mid-write"]).exited;
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
    const { child, exited: done } = startSaver([dir, "loop"]);
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
