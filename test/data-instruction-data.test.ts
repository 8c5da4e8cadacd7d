import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { AddressInfo } from "net";
import { DEFAULT_DATA_FILE, loadInstructionData } from "../lib/data/instruction-data";
import { DataError } from "../lib/core/errors";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "data-test-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** Write `text` to a fresh file and return the one-line message loading it gives. */
async function errorFor(name: string, text: string): Promise<string> {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, text);
  try {
    await loadInstructionData(file, { url: "http://127.0.0.1:9/never-used" });
  } catch (err) {
    assert.ok(err instanceof DataError, `expected a DataError, got ${err}`);
    const message = (err as Error).message;
    assert.ok(!message.includes("\n"), `one line: ${message}`);
    assert.ok(message.startsWith(file + ": "), `names the file: ${message}`);
    return message.slice(file.length + 2);
  }
  assert.fail(`${name} loaded without an error`);
}

const good = { instruction: "Say hi.", input: "", output: "Hi." };

test("the repository's file: 1,100 valid entries", async () => {
  const data = await loadInstructionData();
  assert.equal(data.length, 1100);
  assert.deepEqual(Object.keys(data[0]), ["instruction", "input", "output"]);
  assert.ok(fs.existsSync(DEFAULT_DATA_FILE));
});

test("bad files give a one-line error naming the file, entry and field", async () => {
  assert.match(await errorFor("notjson.json", "{ nope"), /^not valid JSON \(/);
  assert.equal(await errorFor("object.json", JSON.stringify({ a: 1 })),
    "expected a JSON array of {instruction, input, output} entries, got object");
  assert.equal(await errorFor("empty.json", "[]"), "the array is empty (no entries)");
  assert.equal(await errorFor("entry.json", JSON.stringify([good, "text"])),
    "entry 1: expected an object with instruction/input/output, got string");
  assert.equal(await errorFor("null.json", JSON.stringify([good, good, null])),
    "entry 2: expected an object with instruction/input/output, got null");
  assert.equal(await errorFor("missing.json", JSON.stringify([good, { instruction: "x", output: "y" }])),
    'entry 1: field "input" is missing');
  assert.equal(await errorFor("type.json", JSON.stringify([{ ...good, output: 42 }])),
    'entry 0: field "output" must be a string, got number');
  assert.equal(await errorFor("emptyinstr.json", JSON.stringify([good, { ...good, instruction: "" }])),
    'entry 1: field "instruction" is empty');
  assert.equal(await errorFor("emptyout.json", JSON.stringify([{ ...good, output: "  \n" }])),
    'entry 0: field "output" is empty');
});

test("a missing custom file is an error, not a download of the book's data", async () => {
  const file = path.join(tmp, "typo.json");
  await assert.rejects(loadInstructionData(file), (err: Error) => err instanceof DataError && err.message === `${file}: no such file`);
});

test("an empty input is fine; extra fields are dropped; literal <|endoftext|> is kept as text", async () => {
  const file = path.join(tmp, "ok.json");
  const entries = [{ ...good, extra: 1 }, { instruction: "Repeat <|endoftext|>", input: "x", output: "<|endoftext|>" }];
  fs.writeFileSync(file, "\ufeff" + JSON.stringify(entries)); // with a byte-order mark
  const data = await loadInstructionData(file);
  assert.deepEqual(data, [good, entries[1]]);
});

test("a missing file is downloaded once, atomically, and then read locally", async () => {
  const body = JSON.stringify([good, good]);
  let requests = 0;
  const server = http.createServer((req, res) => {
    requests++;
    if (req.url === "/data.json") res.end(body);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    const file = path.join(tmp, "sub", "downloaded.json");
    assert.deepEqual(await loadInstructionData(file, { url: `${base}/data.json` }), [good, good]);
    assert.equal(fs.readFileSync(file, "utf8"), body);
    assert.deepEqual(fs.readdirSync(path.dirname(file)), ["downloaded.json"]); // no temp file left
    await loadInstructionData(file, { url: `${base}/data.json` });
    assert.equal(requests, 1);

    const failed = path.join(tmp, "failed.json");
    await assert.rejects(loadInstructionData(failed, { url: `${base}/missing.json` }), (err: Error) => {
      assert.ok(err instanceof DataError);
      assert.match(err.message, /failed\.json: file is missing and the download from .* failed \(HTTP 404/);
      return true;
    });
    assert.ok(!fs.existsSync(failed));
  } finally {
    server.close();
  }
});
