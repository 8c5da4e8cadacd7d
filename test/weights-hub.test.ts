// Downloading pretrained weights, against a fake Hub on 127.0.0.1: a full download,
// resuming a partial file, never using a file whose size or hash is wrong, using the
// cache without the network, and the manual instructions when the server is unreachable.
import { after, before, beforeEach, mock, test } from "node:test";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import { AddressInfo } from "node:net";
import * as path from "node:path";
import { WeightsError } from "../lib/core/errors";
import { DownloadProgress, ensurePretrainedWeights, hasPretrainedWeights, pretrainedDir } from "../lib/pretrained/hub";
import { TINY_HF_CONFIG, makeHFTensors, tempDir, writeHFDir } from "./helpers/hf-checkpoint";

const NAME = "gpt2-medium (355M)"; // no size pinned in the library: the fake Hub's headers decide
const REPO = "/openai-community/gpt2-medium/resolve/main";
const root = tempDir("hub");
after(() => fs.rmSync(root, { recursive: true, force: true }));

// the real thing, small: a tiny GPT-2 folder made by the test helper
const source = writeHFDir(path.join(root, "source"), makeHFTensors(TINY_HF_CONFIG, { seed: 3 }));
const WEIGHTS = fs.readFileSync(path.join(source, "model.safetensors"));
const CONFIG = fs.readFileSync(path.join(source, "config.json"));
const SHA = crypto.createHash("sha256").update(WEIGHTS).digest("hex");

/** How the fake Hub misbehaves in a test. */
const server = {
  /** bytes served for model.safetensors (default: the real file) */
  body: WEIGHTS as Buffer,
  /** X-Linked-Size and X-Linked-ETag sent with the redirect */
  linkedSize: WEIGHTS.length,
  linkedEtag: `"${SHA}"`,
  /** every request, as "METHOD path range" */
  log: [] as string[],
};
let endpoint = "";
let httpServer: http.Server;

before(async () => {
  httpServer = http.createServer((req, res) => {
    server.log.push(`${req.method} ${req.url} ${req.headers.range ?? ""}`.trim());
    if (req.url === `${REPO}/config.json`) {
      res.writeHead(200, { "Content-Length": CONFIG.length });
      res.end(req.method === "HEAD" ? undefined : CONFIG);
    } else if (req.url === `${REPO}/model.safetensors`) {
      // like the Hub: LFS files redirect to a CDN, with their size and sha256 on the redirect
      res.writeHead(302, { Location: "/cdn/blob", "X-Linked-Size": server.linkedSize, "X-Linked-ETag": server.linkedEtag });
      res.end();
    } else if (req.url === "/cdn/blob") {
      const body = server.body;
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
      const start = m ? Number(m[1]) : 0;
      res.writeHead(m ? 206 : 200, {
        "Content-Length": body.length - start,
        ...(m ? { "Content-Range": `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      res.end(req.method === "HEAD" ? undefined : body.subarray(start));
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => httpServer.listen(0, "127.0.0.1", resolve));
  endpoint = `http://127.0.0.1:${(httpServer.address() as AddressInfo).port}`;
});
after(() => httpServer.close());

beforeEach(() => {
  server.body = WEIGHTS;
  server.linkedSize = WEIGHTS.length;
  server.linkedEtag = `"${SHA}"`;
  server.log = [];
});

let n = 0;
const freshCache = () => path.join(root, `cache${n++}`);

async function rejects(p: Promise<unknown>, ...patterns: RegExp[]): Promise<string> {
  const err = await p.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof WeightsError, `expected a WeightsError, got ${String(err)}`);
  const msg = (err as Error).message;
  assert.ok(!msg.includes("\n"), `message is not one line: ${msg}`);
  for (const re of patterns) assert.match(msg, re);
  return msg;
}

test("a full download puts both files in the cache folder, with progress; a second call uses the cache", async () => {
  const cache = freshCache();
  const progress: DownloadProgress[] = [];
  const dir = await ensurePretrainedWeights(NAME, cache, { endpoint, onProgress: (p) => progress.push(p) });
  assert.equal(dir, path.join(cache, "gpt2-medium"));
  assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), WEIGHTS);
  assert.deepEqual(fs.readFileSync(path.join(dir, "config.json")), CONFIG);
  assert.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "model.safetensors"]); // no .part left
  const last = progress.filter((p) => p.file === "model.safetensors").pop()!;
  assert.deepEqual(last, { file: "model.safetensors", received: WEIGHTS.length, total: WEIGHTS.length });
  assert.ok(hasPretrainedWeights("gpt2-medium", cache));

  server.log = [];
  assert.equal(await ensurePretrainedWeights("gpt2-medium", cache, { endpoint }), dir);
  assert.deepEqual(server.log, []); // not one request
});

test("a partial download resumes with a Range request and only the missing bytes are sent", async () => {
  const cache = freshCache();
  const dir = pretrainedDir(NAME, cache);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), CONFIG);
  const half = Math.floor(WEIGHTS.length / 2);
  fs.writeFileSync(path.join(dir, "model.safetensors.part"), WEIGHTS.subarray(0, half));
  await ensurePretrainedWeights(NAME, cache, { endpoint });
  assert.ok(server.log.includes(`GET /cdn/blob bytes=${half}-`), server.log.join(" | "));
  assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), WEIGHTS);
  assert.ok(!fs.existsSync(path.join(dir, "model.safetensors.part")));
});

test("a cut-off model.safetensors in the cache is not used: it is resumed", async () => {
  const cache = freshCache();
  const dir = pretrainedDir(NAME, cache);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), CONFIG);
  fs.writeFileSync(path.join(dir, "model.safetensors"), WEIGHTS.subarray(0, 1000));
  assert.equal(hasPretrainedWeights(NAME, cache), false);
  await ensurePretrainedWeights(NAME, cache, { endpoint });
  assert.ok(server.log.includes("GET /cdn/blob bytes=1000-"), server.log.join(" | "));
  assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), WEIGHTS);
});

test("a download larger than announced is deleted, never used", async () => {
  const cache = freshCache();
  server.linkedSize = WEIGHTS.length - 8;
  await rejects(ensurePretrainedWeights(NAME, cache, { endpoint }),
    new RegExp(`model\\.safetensors: downloaded ${WEIGHTS.length} bytes but the server announced ${WEIGHTS.length - 8}; the file was deleted`));
  const dir = pretrainedDir(NAME, cache);
  assert.deepEqual(fs.readdirSync(dir), ["config.json"]);
});

test("a download shorter than announced is kept only as .part, for the next run to resume", async () => {
  const cache = freshCache();
  server.body = WEIGHTS.subarray(0, WEIGHTS.length - 100);
  await rejects(ensurePretrainedWeights(NAME, cache, { endpoint }),
    new RegExp(`model\\.safetensors: download incomplete \\(${WEIGHTS.length - 100} of ${WEIGHTS.length} bytes\\); run again to resume`));
  const dir = pretrainedDir(NAME, cache);
  assert.ok(!fs.existsSync(path.join(dir, "model.safetensors")));
  server.body = WEIGHTS;
  await ensurePretrainedWeights(NAME, cache, { endpoint });
  assert.ok(server.log.includes(`GET /cdn/blob bytes=${WEIGHTS.length - 100}-`));
  assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), WEIGHTS);
});

test("a write that takes only part of a chunk is continued, not dropped: the file is whole", async () => {
  // the module object itself (an `import * as` namespace cannot be stubbed): hub.ts sees the stub
  const realFs: typeof fs = require("node:fs");
  const writeSync = realFs.writeSync;
  // like a full disk or a signal: each call writes at most 7 bytes and says so
  const short = mock.method(realFs, "writeSync", (fd: number, buf: Uint8Array, offset = 0, length = buf.length - offset, pos?: number | null) =>
    writeSync(fd, buf, offset, Math.min(length, 7), pos));
  try {
    const dir = await ensurePretrainedWeights(NAME, freshCache(), { endpoint });
    assert.ok(short.mock.callCount() > WEIGHTS.length / 7, "the stub was used");
    assert.deepEqual(fs.readFileSync(path.join(dir, "model.safetensors")), WEIGHTS);
  } finally {
    short.mock.restore();
  }
});

test("a download whose SHA-256 does not match X-Linked-ETag is deleted, never used", async () => {
  const cache = freshCache();
  const corrupt = Buffer.from(WEIGHTS);
  corrupt[corrupt.length - 1] ^= 0xff; // same size, one flipped byte
  server.body = corrupt;
  await rejects(ensurePretrainedWeights(NAME, cache, { endpoint }),
    new RegExp(`model\\.safetensors: SHA-256 [0-9a-f]{64} does not match the expected ${SHA}; the file was deleted`));
  assert.deepEqual(fs.readdirSync(pretrainedDir(NAME, cache)), ["config.json"]);
});

test("an unreachable server gives the manual instructions: which two files, from where, into which folder", async () => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
  const deadPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const dead = `http://127.0.0.1:${deadPort}`;
  const cache = freshCache();
  const msg = await rejects(ensurePretrainedWeights(NAME, cache, { endpoint: dead }),
    new RegExp(`^cannot reach 127\\.0\\.0\\.1:${deadPort} \\(ECONNREFUSED\\); to install gpt2-medium \\(355M\\) by hand, download `),
    new RegExp(`${dead}/openai-community/gpt2-medium/resolve/main/config\\.json and ${dead}/openai-community/gpt2-medium/resolve/main/model\\.safetensors`));
  assert.ok(msg.endsWith(`put both files in ${path.resolve(cache, "gpt2-medium")}${path.sep}`), msg);

  // a complete cached copy is still used offline
  const dir = pretrainedDir(NAME, cache);
  fs.writeFileSync(path.join(dir, "config.json"), CONFIG);
  fs.writeFileSync(path.join(dir, "model.safetensors"), WEIGHTS);
  assert.equal(await ensurePretrainedWeights(NAME, cache, { endpoint: dead }), dir);
});

test("an HTTP error names the status and gives the manual instructions", async () => {
  const cache = freshCache();
  await rejects(ensurePretrainedWeights(NAME, cache, { endpoint: `${endpoint}/nothing-here` }),
    /\/nothing-here\/openai-community\/gpt2-medium\/resolve\/main\/config\.json: HTTP 404 Not Found; to install gpt2-medium \(355M\) by hand/);
});
