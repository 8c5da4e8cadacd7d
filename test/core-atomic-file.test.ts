// writeFileAtomic: the one writer every file of the project goes through. A reader sees the old
// file or the whole new one, and a failed write leaves neither half a file nor a temporary one.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeAll, writeFileAtomic } from "../lib/core/atomic-file";

function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "atomic-file-"));
}

test("writes the whole content and replaces an older, longer file", () => {
  const dir = scratch();
  try {
    const file = path.join(dir, "out.txt");
    fs.writeFileSync(file, "x".repeat(10_000));
    writeFileAtomic(file, (fd) => writeAll(fd, "new"));
    assert.equal(fs.readFileSync(file, "utf8"), "new");
    assert.deepEqual(fs.readdirSync(dir), ["out.txt"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a write that throws keeps the old file and leaves no temporary file", () => {
  const dir = scratch();
  try {
    const file = path.join(dir, "out.txt");
    fs.writeFileSync(file, "old");
    assert.throws(() => writeFileAtomic(file, (fd) => {
      writeAll(fd, "half");
      throw new Error("disk full");
    }), /disk full/);
    assert.equal(fs.readFileSync(file, "utf8"), "old");
    assert.deepEqual(fs.readdirSync(dir), ["out.txt"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a rename that fails (the target is a folder) leaves no temporary file", () => {
  const dir = scratch();
  try {
    const target = path.join(dir, "taken");
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, "inside"), "");
    assert.throws(() => writeFileAtomic(target, (fd) => writeAll(fd, "data")));
    assert.deepEqual(fs.readdirSync(dir), ["taken"]);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
