// chooseModel: "auto" takes cached or downloadable GPT-2 and otherwise falls back to the
// random "tiny" model with a banner; the offline decision is quick; named configs and
// weight folders load what they name. The "GPT-2" here is a tiny checkpoint (V=11, C=6)
// placed where gpt2-medium would be, in the cache or behind a local HTTP server.
import { after, afterEach, before, beforeEach, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http from "node:http";
import * as path from "node:path";
import type { AddressInfo } from "node:net";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { GPTConfig, TINY } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { WeightsError } from "../lib/core/errors";
import { box, wrap } from "../lib/pretrained/banner";
import { chooseModel } from "../lib/pretrained/select";
import { deterministicModel } from "./helpers/deterministic-weights";
import { tempDir } from "./helpers/hf-checkpoint";

const SMALL: GPTConfig = { vocabSize: 11, contextLength: 7, embDim: 6, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true };
const IDS = [[1, 2, 3, 4], [10, 0, 5, 9]];

let checkpoint: string; // a saved SMALL model
let expected: number[][][]; // its logits on IDS
const savedEnv = { COURSE_OFFLINE: process.env.COURSE_OFFLINE, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };

/** The banner's text without its box, lines joined, so a match does not depend on where it wraps. */
function unbox(banner: string | null): string {
  assert.ok(banner !== null, "no banner");
  return banner.split("\n").map((l) => l.replace(/^#+ ?/, "").replace(/ ?#+$/, "").trim()).filter((l) => l !== "").join(" ");
}

function logits(model: GPTModel): number[][][] {
  return tf.tidy(() => model.forward(tf.tensor2d(IDS, undefined, "int32")).arraySync() as number[][][]);
}

before(async () => {
  await initEngine({ log: () => {} });
  checkpoint = tempDir("select-ckpt");
  const model = deterministicModel(SMALL, { tiedHead: true });
  expected = logits(model);
  await saveGPT2Directory(model, checkpoint);
  model.dispose();
});

beforeEach(() => {
  delete process.env.COURSE_OFFLINE;
  delete process.env.HF_HUB_OFFLINE;
});
afterEach(() => {
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});
after(() => fs.rmSync(checkpoint, { recursive: true, force: true }));

/** A local "Hub" serving the checkpoint for every repository; `hang` accepts and never answers. */
async function hub(mode: "serve" | "hang"): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    if (mode === "hang") return; // never answers
    const file = path.join(checkpoint, path.basename(req.url ?? ""));
    if (!fs.existsSync(file)) return void res.writeHead(404).end();
    const body = fs.readFileSync(file);
    res.writeHead(200, { "Content-Length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

test("auto, offline by COURSE_OFFLINE=1 and nothing cached: tiny from random init, with the banner, without the network", async () => {
  process.env.COURSE_OFFLINE = "1";
  const cacheDir = tempDir("select-empty");
  const server = await hub("serve");
  const logged: string[] = [];
  try {
    const t0 = Date.now();
    const chosen = await chooseModel({ model: "auto", cacheDir, endpoint: server.url, log: (l) => logged.push(l) });
    assert.ok(Date.now() - t0 < 5000, "the offline path took more than 5 s");
    assert.equal(chosen.name, "tiny");
    assert.equal(chosen.pretrained, false);
    assert.deepEqual(chosen.model.cfg, TINY);
    assert.match(chosen.source, /random init \(seed 123\)/);
    assert.ok(chosen.banner !== null);
    assert.match(chosen.banner!, /NOT PRETRAINED/);
    assert.match(chosen.banner!, /RANDOM weights/);
    assert.match(unbox(chosen.banner), /COURSE_OFFLINE=1/);
    assert.ok(unbox(chosen.banner).includes(path.join(path.resolve(cacheDir), "gpt2-medium")), "the banner says where to put the files");
    assert.ok(chosen.banner!.split("\n").length >= 5, "the banner is several lines");
    assert.deepEqual(logged, [chosen.banner], "the banner goes to log");
    assert.deepEqual(server.requests, [], "COURSE_OFFLINE=1 must not touch the network");
    chosen.model.dispose();
  } finally {
    await server.close();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("auto, a Hub that does not answer: falls back within the probe timeout", async () => {
  const cacheDir = tempDir("select-hang");
  const server = await hub("hang");
  try {
    const t0 = Date.now();
    const chosen = await chooseModel({ model: "auto", cacheDir, endpoint: server.url, probeTimeoutMs: 300, log: () => {} });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.equal(chosen.pretrained, false);
    assert.match(unbox(chosen.banner), /did not answer within 0.3 s/);
    assert.equal(server.requests.length, 1);
    chosen.model.dispose();
  } finally {
    await server.close();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("auto, an unreachable host: falls back, naming the error", async () => {
  const cacheDir = tempDir("select-closed");
  const server = await hub("serve");
  const url = server.url;
  await server.close(); // nothing listens on that port any more
  try {
    const chosen = await chooseModel({ model: "auto", cacheDir, endpoint: url, log: () => {} });
    assert.equal(chosen.pretrained, false);
    assert.match(unbox(chosen.banner), /cannot reach 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/);
    chosen.model.dispose();
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("auto with gpt2-medium in the cache: loads it, even offline, and the logits are the saved model's", async () => {
  process.env.COURSE_OFFLINE = "1";
  const cacheDir = tempDir("select-cached");
  fs.cpSync(checkpoint, path.join(cacheDir, "gpt2-medium"), { recursive: true });
  try {
    const chosen = await chooseModel({ model: "auto", cacheDir, log: () => assert.fail("nothing to log") });
    assert.equal(chosen.name, "gpt2-medium (355M)");
    assert.equal(chosen.pretrained, true);
    assert.equal(chosen.banner, null);
    assert.equal(chosen.source, path.join(path.resolve(cacheDir), "gpt2-medium"));
    assert.deepEqual(logits(chosen.model), expected);
    chosen.model.dispose();
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("auto online: downloads gpt2-medium into the cache and loads it", async () => {
  const cacheDir = tempDir("select-download");
  const server = await hub("serve");
  try {
    const chosen = await chooseModel({ model: "auto", cacheDir, endpoint: server.url, log: () => {} });
    assert.equal(chosen.pretrained, true);
    assert.equal(chosen.banner, null);
    assert.ok(server.requests.includes("GET /openai-community/gpt2-medium/resolve/main/model.safetensors"), server.requests.join(", "));
    assert.ok(fs.existsSync(path.join(cacheDir, "gpt2-medium", "model.safetensors")));
    assert.deepEqual(logits(chosen.model), expected);
    chosen.model.dispose();
  } finally {
    await server.close();
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("a named GPT-2 size that is neither cached nor downloadable is an error with the manual instructions", async () => {
  process.env.COURSE_OFFLINE = "1";
  const cacheDir = tempDir("select-named");
  try {
    await assert.rejects(
      chooseModel({ model: "gpt2-small", cacheDir, log: () => {} }),
      (err: Error) => err instanceof WeightsError && /gpt2-small \(124M\) is not cached.*COURSE_OFFLINE=1.*download .*model\.safetensors/.test(err.message),
    );
    // cached, it loads under its full name
    fs.cpSync(checkpoint, path.join(cacheDir, "gpt2-large"), { recursive: true });
    const chosen = await chooseModel({ model: "gpt2-large", cacheDir, log: () => {} });
    assert.equal(chosen.name, "gpt2-large (774M)");
    assert.deepEqual(logits(chosen.model), expected);
    chosen.model.dispose();
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
});

test("weightsDir loads that folder; tiny and a JSON config are random init with a banner", async () => {
  const fromDir = await chooseModel({ weightsDir: checkpoint, model: "tiny", log: () => assert.fail("nothing to log") });
  assert.equal(fromDir.pretrained, true);
  assert.equal(fromDir.source, path.resolve(checkpoint));
  assert.deepEqual(logits(fromDir.model), expected);
  fromDir.model.dispose();

  const tiny = await chooseModel({ model: "tiny", seed: 7, log: () => {} });
  assert.equal(tiny.name, "tiny");
  assert.equal(tiny.pretrained, false);
  assert.match(tiny.banner!, /NOT PRETRAINED/);
  assert.equal(tiny.source, "random init (seed 7)");
  tiny.model.dispose();

  const dir = tempDir("select-json");
  const file = path.join(dir, "small.json");
  fs.writeFileSync(file, JSON.stringify({ embDim: 8, nLayers: 1, nHeads: 2, contextLength: 32 }));
  try {
    const custom = await chooseModel({ model: file, log: () => {} });
    assert.equal(custom.model.cfg.embDim, 8);
    assert.equal(custom.model.cfg.vocabSize, TINY.vocabSize);
    assert.equal(custom.pretrained, false);
    custom.model.dispose();
    fs.writeFileSync(file, JSON.stringify({ embDims: 8 }));
    await assert.rejects(chooseModel({ model: file, log: () => {} }), /unknown model config field "embDims"/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  await assert.rejects(chooseModel({ model: "gpt3", log: () => {} }), /unknown model "gpt3"/);
});

test("the banner box: words wrapped at the width, a long word on a line of its own, every line as wide as the box", () => {
  const url = "https://huggingface.co/openai-community/gpt2-medium/resolve/main/model.safetensors";
  assert.deepEqual(wrap(`get it from ${url} please`, 20), ["get it from", url, "please"]);
  const banner = box(["one two three four five six", "seven"], 10).split("\n");
  assert.deepEqual(banner, [
    "##############",
    "# one two    #",
    "# three four #",
    "# five six   #",
    "#            #",
    "# seven      #",
    "##############",
  ]);
});
