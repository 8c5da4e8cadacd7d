/**
 * Writing a file so that a crash (power cut, `kill -9`) at any moment leaves either the
 * old file or the complete new one, never half of one: write a temporary file in the same
 * folder, flush it to disk, rename it over the target (an atomic step on one file system),
 * then flush the folder so the rename itself survives.
 */
import * as fs from "node:fs";
import * as path from "node:path";

/** Creates `file` atomically; `write` gets the temporary file's descriptor. */
export function writeFileAtomic(file: string, write: (fd: number) => void): void {
  const dir = path.dirname(path.resolve(file));
  removeStaleTemps(dir, path.basename(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  const fd = fs.openSync(tmp, "w");
  try {
    write(fd);
    fs.fsyncSync(fd);
  } catch (err) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (err) {
    fs.rmSync(tmp, { force: true }); // e.g. `file` is a folder: do not leave a full-size copy behind
    throw err;
  }
  syncDir(dir);
}

/**
 * Deletes temporary files a killed writer left for `base` (a killed save of gpt2-medium leaves
 * 1.4 GB behind). Only those whose process is gone: another live process may be writing.
 */
function removeStaleTemps(dir: string, base: string): void {
  const prefix = `.${base}.`;
  for (const entry of fs.readdirSync(dir)) {
    if (!entry.startsWith(prefix) || !entry.endsWith(".tmp")) continue;
    const pid = Number(entry.slice(prefix.length).split(".")[0]);
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) fs.rmSync(path.join(dir, entry), { force: true });
  }
}

/** Whether process `pid` still runs (a temporary file's writer may be alive, or killed). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

/** Writes all of `bytes` at the current position (writeSync may write less than asked). */
export function writeAll(fd: number, bytes: Uint8Array | string): void {
  const buf = typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes;
  let done = 0;
  while (done < buf.length) done += fs.writeSync(fd, buf, done, Math.min(buf.length - done, 1 << 30));
}

/** Makes a rename in `dir` durable; not every platform can open a folder. */
export function syncDir(dir: string): void {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Windows cannot open a directory: the rename is still atomic there
  }
}
