/**
 * The run folder of a training command (finetune, dpo): `--out DIR`, or runs/<timestamp>. Checked before
 * any slow work (an existing non-empty folder is refused unless --force), and claimed with run.json once
 * the data and model are good, so that a second run into the same folder is refused from then on and a
 * failed start leaves no folder behind.
 */
import * as fs from "fs";
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { ConfigError } from "../core/errors";

/** Now, as a folder name: 2026-11-27T10-11-12Z. */
export function timestamp(): string {
  return new Date().toISOString().replace(/[:.]/g, "-").replace(/-\d{3}Z$/, "Z");
}

/** The run folder's absolute path; a ConfigError when it exists as a file, or not empty without `force`. */
export function checkOut(out: string | undefined, force: boolean): string {
  const dir = path.resolve(out ?? path.join("runs", timestamp()));
  if (fs.existsSync(dir)) {
    if (!fs.statSync(dir).isDirectory()) throw new ConfigError(`--out ${dir}: exists and is not a folder`);
    if (fs.readdirSync(dir).length > 0 && !force) {
      throw new ConfigError(`--out ${dir}: the folder exists and is not empty; choose another or pass --force to overwrite`);
    }
  }
  return dir;
}

/** Create the run folder and claim it with run.json (the command line, the start time, the process). */
export function claimOut(dir: string, force: boolean): void {
  checkOut(dir, force); // again: another run may have claimed it while this one loaded
  fs.mkdirSync(dir, { recursive: true });
  const claim = { command: process.argv.slice(2), startedAt: new Date().toISOString(), pid: process.pid };
  writeFileAtomic(path.join(dir, "run.json"), (fd) => writeAll(fd, JSON.stringify(claim, null, 2) + "\n"));
}
