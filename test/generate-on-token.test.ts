// generateIds' `onToken` option (what the chat server streams from): it hears every token added, in
// order, and never the <|endoftext|> that ends a response; returning false stops generation there;
// it is awaited; without it, nothing changes (PyTorch's greedy tokens, test/fixtures/gpt-golden-small.json).
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { initEngine } from "../lib/engine";
import type { GPTConfig } from "../lib/model/config";
import { generateIds } from "../lib/generate/generate";
import { deterministicModel } from "./helpers/deterministic-weights";

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "gpt-golden-small.json"), "utf8")) as { config: GPTConfig; prompt: number[][]; greedy: number[][] };
const prompt = [golden.prompt[0]];
const expected = golden.greedy[0].slice(prompt[0].length); // PyTorch's greedy continuation

before(async () => {
  await initEngine({ log: () => {} });
});

for (const kvCache of [false, true]) {
  test(`onToken hears each new token in order, and false stops there (kvCache ${kvCache})`, async () => {
    const model = deterministicModel(golden.config);
    const heard: number[][] = [];
    const [all] = await generateIds(model, prompt, { maxNewTokens: 10, kvCache, onToken: (next) => void heard.push(next) });
    assert.deepEqual(heard.map(([id]) => id), all.slice(prompt[0].length));
    assert.deepEqual(heard.map(([id]) => id), expected.slice(0, 10));
    let n = 0;
    const [stopped] = await generateIds(model, prompt, { maxNewTokens: 10, kvCache, onToken: async () => (await new Promise((r) => setTimeout(r, 1)), ++n < 3) });
    assert.deepEqual(stopped, [...prompt[0], ...expected.slice(0, 3)], "stopped after the third token, which is kept");
    model.dispose();
  });
}

test("onToken never hears the eos that ends the response", async () => {
  const model = deterministicModel(golden.config);
  const eos = expected[4]; // greedy picks it at step 5 (index 4), and not before
  assert.ok(!expected.slice(0, 4).includes(eos));
  const heard: number[] = [];
  const [ids] = await generateIds(model, prompt, { maxNewTokens: 10, eosId: eos, onToken: ([id]) => void heard.push(id) });
  assert.deepEqual(heard, expected.slice(0, 4));
  assert.deepEqual(ids, [...prompt[0], ...heard]);
  model.dispose();
});
