// `npm run loss` prints the loss PyTorch computes (test/reference/evaluate_reference.py) for
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
import { DataLoader } from "../lib/data/loader";
import { calcLossLoader } from "../lib/train/loss";
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
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-loss-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

before(async () => {
  await initEngine({ log: () => {} });
});

test("the fixture's token ids are still what the library's tokenizer gives", () => {
  assert.deepEqual(new InstructionDataset(fixture.entries).encoded, fixture.encoded);
});

test("loss --split all --batch-size 3 prints PyTorch's loss within 1e-4", async () => {
  const model = deterministicModel(fixture.config, { tiedHead: fixture.tiedHead });
  const weights = path.join(tmp, "model");
  await saveGPT2Directory(model, weights);
  model.dispose();
  const data = path.join(tmp, "data.json");
  fs.writeFileSync(data, JSON.stringify(fixture.entries));
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "lib", "cli", "loss.ts"), "--weights", weights, "--data", data, "--split", "all", "--batch-size", String(fixture.batchSize)],
    { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const m = /^loss: (\S+)\n$/.exec(r.stdout);
  assert.ok(m, `stdout was ${JSON.stringify(r.stdout)}`);
  const loss = Number(m[1]);
  assert.ok(Math.abs(loss - fixture.loss) < 1e-4, `loss ${loss} vs PyTorch ${fixture.loss}`);
});

test("loss cuts batches to the model's context length: a 32-token model on longer entries prints its loss", async () => {
  const cfg: GPTConfig = { ...fixture.config, contextLength: 32 };
  assert.ok(fixture.encoded.every((ids) => ids.length > cfg.contextLength), "the entries must be longer than the context");
  const model = deterministicModel(cfg, { tiedHead: fixture.tiedHead });
  const weights = path.join(tmp, "model-ctx32");
  await saveGPT2Directory(model, weights);
  // what loss must print: the book's calc_loss_loader with allowed_max_length = the model's context
  const loader = new DataLoader(new InstructionDataset(fixture.entries), { batchSize: fixture.batchSize, collateOptions: { allowedMaxLength: 32 } });
  const expected = await calcLossLoader(loader.batches(0), model);
  model.dispose();
  const data = path.join(tmp, "data-ctx32.json");
  fs.writeFileSync(data, JSON.stringify(fixture.entries));
  const r = spawnSync(
    path.join(ROOT, "node_modules", ".bin", "tsx"),
    [path.join(ROOT, "lib", "cli", "loss.ts"), "--weights", weights, "--data", data, "--batch-size", String(fixture.batchSize)],
    { cwd: ROOT, encoding: "utf8", timeout: 120_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  const m = /^loss: (\S+)\n$/.exec(r.stdout);
  assert.ok(m, `stdout was ${JSON.stringify(r.stdout)}`);
  assert.ok(Math.abs(Number(m[1]) - expected) < 1e-5, `loss ${m[1]} vs ${expected}`);
  assert.match(r.stderr, /--split all: 8 of 8 entries are longer than 32 tokens and are cut to fit/);
});
