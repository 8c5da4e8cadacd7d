// `npm run evaluate` prints the loss PyTorch computes (test/reference/evaluate_reference.py) for
// the same model and entries: file order, batches of --batch-size with a short last batch,
// the book's collate, mean of batch means.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import { InstructionDataset } from "../lib/data/dataset";
import type { GPTConfig } from "../lib/model/config";
import { saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { deterministicModel } from "./helpers/deterministic-weights";

const ROOT = path.resolve(__dirname, "..");
const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "evaluate-golden.json"), "utf8")) as {
  config: GPTConfig;
  tiedHead: boolean;
  batchSize: number;
  entries: { instruction: string; input: string; output: string }[];
  encoded: number[][];
  loss: number;
};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-evaluate-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  await initEngine({ log: () => {} });
});

test("the fixture's token ids are still what the library's tokenizer gives", () => {
  assert.deepEqual(new InstructionDataset(fixture.entries).encoded, fixture.encoded);
});

test("evaluate --split all --batch-size 3 prints PyTorch's loss within 1e-4", async () => {
  const model = deterministicModel(fixture.config, { tiedHead: fixture.tiedHead });
  const weights = path.join(tmp, "model");
  await saveGPT2Directory(model, weights);
  model.dispose();
  const data = path.join(tmp, "data.json");
  fs.writeFileSync(data, JSON.stringify(fixture.entries));
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "lib", "cli", "evaluate.ts"), "--weights", weights, "--data", data, "--split", "all", "--batch-size", String(fixture.batchSize)],
    { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const m = /^loss: (\S+)\n$/.exec(r.stdout);
  assert.ok(m, `stdout was ${JSON.stringify(r.stdout)}`);
  const loss = Number(m[1]);
  assert.ok(Math.abs(loss - fixture.loss) < 1e-4, `evaluate ${loss} vs PyTorch ${fixture.loss}`);
});
