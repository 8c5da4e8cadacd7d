// `--data URL` (exercise 7.3): a download with progress and a SHA-256 checksum into a cache,
// against a stand-in file server on 127.0.0.1.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { cachePathFor, resolveDataSource } from "../lib/data/download";
import { loadInstructionData } from "../lib/data/instruction-data";
import { DataError } from "../lib/core/errors";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "data-download-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const ENTRIES = Array.from({ length: 3000 }, (_, i) => ({ instruction: `Say the number ${i}.`, input: i % 3 ? "" : "in words", output: `Number ${i}.` }));
const BODY = Buffer.from(JSON.stringify(ENTRIES, null, 2));
const SHA = createHash("sha256").update(BODY).digest("hex");

/** A file server: /data.json (in 16 KB pieces, with Content-Length), /bad.json (not instruction data), /cut.json (closes early), anything else 404. */
async function fileServer(): Promise<{ url: string; hits: string[]; close: () => Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url as string);
    if (req.url === "/data.json" || req.url === "/cut.json") {
      res.writeHead(200, { "Content-Type": "application/json", "Content-Length": String(BODY.length) });
      const end = req.url === "/cut.json" ? BODY.length / 2 : BODY.length;
      // 16 KB pieces a few ms apart, as over a network
      const send = (i: number): void => {
        if (i >= end) return void (req.url === "/cut.json" ? res.socket?.destroy() : res.end());
        res.write(BODY.subarray(i, Math.min(i + 16384, end)));
        setTimeout(() => send(i + 16384), 2);
      };
      return send(0);
    }
    if (req.url === "/bad.json") return res.end(JSON.stringify([{ instruction: "x" }]));
    res.writeHead(404, { "Content-Type": "text/plain" });
    res.end("not found");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, hits, close: () => new Promise((r) => server.close(() => r())) };
}

test("a URL is downloaded once with progress, checksummed, cached, and loads as instruction data", async () => {
  const srv = await fileServer();
  try {
    const cacheDir = path.join(tmp, "cache1");
    const progress: Array<[number, number | undefined]> = [];
    const lines: string[] = [];
    const file = await resolveDataSource(`${srv.url}/data.json`, { cacheDir, onProgress: (r, t) => progress.push([r, t]), log: (l) => lines.push(l) });
    assert.equal(file, cachePathFor(`${srv.url}/data.json`, cacheDir));
    assert.ok(file.endsWith("-data.json"));
    assert.deepEqual(fs.readFileSync(file), BODY);
    assert.equal(fs.readFileSync(`${file}.sha256`, "utf8"), `${SHA}\n`);
    assert.ok(progress.length > 2, "progress while the body arrives");
    assert.deepEqual(progress[progress.length - 1], [BODY.length, BODY.length]);
    assert.match(lines[0], new RegExp(`downloaded .*data\\.json \\(${BODY.length.toLocaleString("en-US")} bytes, sha256 ${SHA}\\)`));
    assert.deepEqual(await loadInstructionData(file), ENTRIES);
    // again: the cached copy, no request
    const again = await resolveDataSource(`${srv.url}/data.json`, { cacheDir, sha256: SHA.toUpperCase(), log: (l) => lines.push(l) });
    assert.equal(again, file);
    assert.equal(srv.hits.length, 1);
    assert.match(lines[1], /using the cached copy/);
    // a cached file changed on disk is downloaded again
    fs.writeFileSync(file, "[]");
    await resolveDataSource(`${srv.url}/data.json`, { cacheDir, log: (l) => lines.push(l) });
    assert.equal(srv.hits.length, 2);
    assert.deepEqual(fs.readFileSync(file), BODY);
    // a plain path is left as it is
    assert.equal(await resolveDataSource("data/instruction-data.json"), "data/instruction-data.json");
  } finally {
    await srv.close();
  }
});

test("a wrong checksum, a cut download, a 404, or data that does not validate: one-line DataError, nothing saved", async () => {
  const srv = await fileServer();
  try {
    const cacheDir = path.join(tmp, "cache2");
    const wrong = "0".repeat(64);
    await assert.rejects(resolveDataSource(`${srv.url}/data.json`, { cacheDir, sha256: wrong }), (e: Error) =>
      e instanceof DataError && e.message === `${srv.url}/data.json: the download has sha256 ${SHA}, not the expected ${wrong}; nothing was saved`);
    await assert.rejects(resolveDataSource(`${srv.url}/cut.json`, { cacheDir }), (e: Error) => e instanceof DataError && /the download failed \(.*\); nothing was saved$/.test(e.message) && !e.message.includes("\n"));
    await assert.rejects(resolveDataSource(`${srv.url}/none.json`, { cacheDir }), /none\.json: the download failed \(HTTP 404 Not Found\); nothing was saved/);
    await assert.rejects(resolveDataSource(`${srv.url}/bad.json`, { cacheDir }), /bad\.json: entry 0: field "input" is missing/);
    await assert.rejects(resolveDataSource(`${srv.url}/data.json`, { cacheDir, sha256: "abc" }), /--data-sha256: expected 64 hex digits, got "abc"/);
    assert.deepEqual(fs.existsSync(cacheDir) ? fs.readdirSync(cacheDir) : [], []);
  } finally {
    await srv.close();
  }
});
