/**
 * `--data URL`: any instruction file in the book's format, fetched once into a cache (exercise
 * 7.3 trains on the 52,002 entries of Stanford's Alpaca data, about 22 MB, instead of the chapter's
 * 1,100).
 *
 * The download streams with a progress callback, hashes the bytes as they come (SHA-256), is
 * parsed and validated before anything is written, and is then written atomically next to a
 * `.sha256` file holding its checksum. A later run uses the cached copy only if it still has that
 * checksum (a file changed on disk is downloaded again), and `sha256` pins the expected value:
 * a download that differs is refused and nothing is saved.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { DataError } from "../core/errors";
import { parseInstructionData } from "./instruction-data";

/** Exercise 7.3: the original Stanford Alpaca data set (52,002 entries), as the book's solution downloads it. */
export const ALPACA_52K_URL = "https://raw.githubusercontent.com/tatsu-lab/stanford_alpaca/main/alpaca_data.json";

/** The repository's cache folder for downloaded data (ignored by git). */
export const DEFAULT_DATA_CACHE = path.resolve(__dirname, "..", "..", ".cache", "data");

export interface DataDownloadOptions {
  /** where downloads are kept (default DEFAULT_DATA_CACHE) */
  cacheDir?: string;
  /** the expected SHA-256 of the file, hex; a download or cached copy that differs is refused */
  sha256?: string;
  /** bytes received so far and the total when the server says it (Content-Length) */
  onProgress?: (received: number, total: number | undefined) => void;
  /** one line per step: "using the cached copy", "downloaded … (sha256 …)" */
  log?: (line: string) => void;
}

/** Whether a --data value is an address to download rather than a file. */
export const isUrl = (source: string): boolean => /^https?:\/\//i.test(source);

/** The cache file for a URL: its last path part, prefixed by a short hash of the whole URL (two sites may both serve data.json). */
export function cachePathFor(url: string, cacheDir = DEFAULT_DATA_CACHE): string {
  const base = path.basename(new URL(url).pathname).replace(/[^A-Za-z0-9._-]+/g, "_") || "data.json";
  return path.join(cacheDir, `${createHash("sha256").update(url).digest("hex").slice(0, 12)}-${base}`);
}

const sha256Of = (file: string): string => createHash("sha256").update(fs.readFileSync(file)).digest("hex");

/**
 * The local file for a --data value: a file path as it is; a URL downloaded into the cache, or
 * its cached copy when that is intact. Returns the path to load.
 */
export async function resolveDataSource(source: string, opts: DataDownloadOptions = {}): Promise<string> {
  if (!isUrl(source)) return source;
  const expected = opts.sha256?.toLowerCase();
  if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) {
    throw new DataError(`--data-sha256: expected 64 hex digits, got "${opts.sha256}"`);
  }
  const file = cachePathFor(source, opts.cacheDir);
  const sumFile = `${file}.sha256`;
  if (fs.existsSync(file) && fs.existsSync(sumFile)) {
    const recorded = fs.readFileSync(sumFile, "utf8").trim();
    const actual = sha256Of(file);
    if (actual === recorded && (expected === undefined || actual === expected)) {
      opts.log?.(`data: using the cached copy of ${source} (${file}, sha256 ${actual})`);
      return file;
    }
    opts.log?.(`data: the cached copy ${file} has sha256 ${actual}, not ${expected ?? recorded}: downloading it again`);
  }
  const { bytes, sha256 } = await download(source, opts.onProgress);
  if (expected !== undefined && sha256 !== expected) {
    throw new DataError(`${source}: the download has sha256 ${sha256}, not the expected ${expected}; nothing was saved`);
  }
  parseInstructionData(new TextDecoder().decode(bytes), source); // refuse to cache what could not be loaded
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, (fd) => writeAll(fd, bytes));
  writeFileAtomic(sumFile, (fd) => writeAll(fd, `${sha256}\n`));
  opts.log?.(`data: downloaded ${source} (${bytes.length.toLocaleString("en-US")} bytes, sha256 ${sha256}) to ${file}`);
  return file;
}

/** The whole body of `url`, hashed as it streams in. */
async function download(url: string, onProgress: DataDownloadOptions["onProgress"]): Promise<{ bytes: Uint8Array; sha256: string }> {
  const hash = createHash("sha256");
  const chunks: Uint8Array[] = [];
  let received = 0;
  try {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`HTTP ${response.status} ${response.statusText}`);
    if (!response.body) throw new Error("the response has no body");
    const header = response.headers.get("content-length");
    const total = header !== null && Number(header) > 0 ? Number(header) : undefined;
    onProgress?.(0, total);
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      hash.update(value);
      received += value.length;
      onProgress?.(received, total);
    }
    if (total !== undefined && received !== total) throw new Error(`the connection closed after ${received} of ${total} bytes`);
  } catch (err) {
    const e = err as Error & { cause?: { code?: string } };
    const reason = [e.message, e.cause?.code].filter(Boolean).join(": ");
    throw new DataError(`${url}: the download failed (${reason}); nothing was saved`);
  }
  return { bytes: Buffer.concat(chunks), sha256: hash.digest("hex") };
}
