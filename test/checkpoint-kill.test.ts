// A training checkpoint save killed with SIGKILL (kill -9) at any moment leaves the previous
// checkpoint loadable by loadCheckpoint, whole (model, optimizer, position, history all from
// one save), and the next save still works. The child is test/helpers/save-then-die.ts.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import { loadCheckpoint, saveCheckpoint } from "../lib/train/checkpoint";
import { tempDir } from "./helpers/hf-checkpoint";
import { killSavers, startSaver } from "./helpers/saver-child";
import { assertCheckpointIs, checkpointModel, checkpointParts } from "./helpers/checkpoint-parts";

const root = tempDir("ckpt-kill");
before(async () => {
  await initEngine({ log: () => {} });
});
after(() => {
  killSavers();
  fs.rmSync(root, { recursive: true, force: true });
});

const startChild = (runDir: string, mode: string, i: number) => startSaver([runDir, mode, String(i)]);

/** Saves checkpoint `i` in this process. */
async function saveHere(runDir: string, i: number): Promise<void> {
  const { model, optimizer } = checkpointModel();
  await saveCheckpoint(runDir, await checkpointParts(model, optimizer, i));
  optimizer.dispose();
  model.dispose();
}

/** Loads the run's checkpoint, checks it is checkpoint `i` throughout, and frees it. */
async function assertLoads(runDir: string, i: number): Promise<void> {
  const loaded = await loadCheckpoint(runDir);
  try {
    assertCheckpointIs(loaded, i);
  } finally {
    loaded.model.dispose();
  }
}

for (const point of ["model", "optimizer", "swap"]) {
  test(`killed at "${point}" while saving checkpoint 2: checkpoint 1 loads whole, and the next save works`, async () => {
    const runDir = path.join(root, point);
    await saveHere(runDir, 1);
    const { exited } = startChild(runDir, `checkpoint-${point}`, 2);
    assert.equal(await exited, "SIGKILL");
    if (point === "swap") assert.ok(!fs.existsSync(path.join(runDir, "checkpoint")), "the kill landed between the renames");
    await assertLoads(runDir, 1);
    await saveHere(runDir, 3);
    await assertLoads(runDir, 3);
    assert.deepEqual(fs.readdirSync(runDir), ["checkpoint"], "the next save removes what the killed one left behind");
  });
}

test("a second kill, in the next save after one killed between the renames: still loads", async () => {
  // the first kill leaves the checkpoint only as checkpoint.old; the next save must not delete
  // it before its own checkpoint is in place
  const runDir = path.join(root, "twice");
  await saveHere(runDir, 1);
  assert.equal(await startChild(runDir, "checkpoint-swap", 2).exited, "SIGKILL");
  assert.equal(await startChild(runDir, "checkpoint-last-rename", 3).exited, "SIGKILL");
  await assertLoads(runDir, 1);
});

test("killed at random moments while saving checkpoints in a loop: the last one saved loads whole", async () => {
  const runDir = path.join(root, "loop");
  let next = 1;
  const delays = Array.from({ length: 4 }, () => Math.floor(Math.random() * 40));
  for (const delayMs of delays) {
    const { child, exited } = startChild(runDir, "checkpoint-loop", next);
    let lastSaved = 0;
    await new Promise<void>((resolve) => {
      let out = "";
      child.stdout!.on("data", (d: Buffer) => {
        out += d.toString();
        lastSaved = Math.max(...[...out.matchAll(/saved (\d+)/g)].map((m) => Number(m[1])));
        if (lastSaved >= next + 1) resolve();
      });
    });
    await new Promise((r) => setTimeout(r, delayMs));
    child.kill("SIGKILL");
    assert.equal(await exited, "SIGKILL");
    // the save that was under way may have finished before the kill, without saying so yet
    const loaded = await loadCheckpoint(runDir);
    const i = loaded.state.position.globalStep;
    try {
      assert.ok(i >= lastSaved && i <= lastSaved + 1, `killed after ${delayMs} ms: loaded checkpoint ${i}, last reported ${lastSaved}`);
      assertCheckpointIs(loaded, i);
    } finally {
      loaded.model.dispose();
    }
    next = i + 1;
  }
});
