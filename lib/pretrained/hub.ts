/**
 * Pretrained GPT-2 weights from the Hugging Face Hub, cached on disk.
 *
 * The book downloads OpenAI's original TensorFlow checkpoint (`gpt_download.py`); we take
 * the same weights as converted on huggingface.co/openai-community/gpt2*, because they come
 * as `config.json` + `model.safetensors`, which `loadGPT2Directory` reads without Python.
 *
 * A download goes to `<file>.part`, resumes with an HTTP Range request when a partial file
 * is there, and is renamed into place only after its size (and SHA-256, when the Hub gives
 * it) check out: a file that does not match is never used. (So the download is atomic the
 * way writeFileAtomic is, write then flush then rename, but its temporary file is kept on
 * failure, to be resumed.) Offline, the error says which two files to fetch by hand and
 * where to put them.
 */
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { ConfigError, WeightsError } from "../core/errors";
import { syncDir, writeAll } from "../core/atomic-file";
import { CONFIG_FILE, readGPT2Config } from "../weights/config-file";
import { WEIGHTS_FILE } from "../weights/gpt2-directory";
import { SafetensorsFile } from "../weights/safetensors-read";

/** A file's expected size and SHA-256, when known ahead of the server's answer. */
interface KnownFile {
  size: number;
  sha256: string;
}

interface PretrainedSource {
  /** Hub repository */
  repo: string;
  /** folder name under the cache directory */
  folder: string;
  /** model.safetensors facts pinned here, so a cached file is checked even offline */
  weights?: KnownFile;
}

/** The book's four GPT-2 sizes and where their weights live. */
export const PRETRAINED_SOURCES: Record<string, PretrainedSource> = {
  "gpt2-small (124M)": {
    repo: "openai-community/gpt2",
    folder: "gpt2-small",
    weights: { size: 548105171, sha256: "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707" },
  },
  // for the larger ones the Hub's X-Linked-Size / X-Linked-ETag headers give size and hash
  "gpt2-medium (355M)": { repo: "openai-community/gpt2-medium", folder: "gpt2-medium" },
  "gpt2-large (774M)": { repo: "openai-community/gpt2-large", folder: "gpt2-large" },
  "gpt2-xl (1558M)": { repo: "openai-community/gpt2-xl", folder: "gpt2-xl" },
};

/** The Hub's address; `HF_ENDPOINT` overrides it, as for Hugging Face's own tools (mirrors). */
export function hubEndpoint(): string {
  return (process.env.HF_ENDPOINT ?? "https://huggingface.co").replace(/\/+$/, "");
}

export interface DownloadProgress {
  file: string;
  /** bytes on disk so far, including a resumed partial file */
  received: number;
  /** expected size, when the server said */
  total: number | null;
}

export interface EnsureWeightsOptions {
  /** called as bytes arrive (at most ~10 times a second, and once at the end of each file) */
  onProgress?: (p: DownloadProgress) => void;
  /** Hub address; default `hubEndpoint()` */
  endpoint?: string;
}

/** "gpt2-medium (355M)", "gpt2-medium" or "gpt2" -> the key of PRETRAINED_SOURCES. */
export function resolvePretrainedName(name: string): string {
  const short = name.trim().toLowerCase().replace(/\s*\(.*\)$/, "");
  const key = Object.keys(PRETRAINED_SOURCES).find((k) => {
    const f = PRETRAINED_SOURCES[k].folder;
    return k.toLowerCase() === name.trim().toLowerCase() || f === short || (short === "gpt2" && f === "gpt2-small");
  });
  if (key === undefined) {
    throw new ConfigError(`no pretrained weights for "${name}"; choose one of: ${Object.keys(PRETRAINED_SOURCES).map((k) => `"${k}"`).join(", ")}`);
  }
  return key;
}

/** The folder where `name`'s weights are (or will be) cached. */
export function pretrainedDir(name: string, cacheDir: string): string {
  return path.join(cacheDir, PRETRAINED_SOURCES[resolvePretrainedName(name)].folder);
}

/** True when both files are in the cache and model.safetensors is complete. Never uses the network. */
export function hasPretrainedWeights(name: string, cacheDir: string): boolean {
  const key = resolvePretrainedName(name);
  return isComplete(pretrainedDir(key, cacheDir), PRETRAINED_SOURCES[key].weights);
}

/** What to do by hand when the download is impossible (one line, for the CLI's `error:`). */
export function manualDownloadInstructions(name: string, cacheDir: string, endpoint = hubEndpoint()): string {
  const key = resolvePretrainedName(name);
  const { repo } = PRETRAINED_SOURCES[key];
  const url = (f: string) => `${endpoint}/${repo}/resolve/main/${f}`;
  return `to install ${key} by hand, download ${url(CONFIG_FILE)} and ${url(WEIGHTS_FILE)} and put both files in ${path.resolve(pretrainedDir(key, cacheDir))}${path.sep}`;
}

/**
 * Returns the folder holding `config.json` and `model.safetensors` for `name`, downloading
 * what is missing from the Hub. A complete cached copy is used without touching the network.
 */
export async function ensurePretrainedWeights(name: string, cacheDir: string, opts: EnsureWeightsOptions = {}): Promise<string> {
  const key = resolvePretrainedName(name);
  const source = PRETRAINED_SOURCES[key];
  const dir = pretrainedDir(key, cacheDir);
  if (isComplete(dir, source.weights)) return dir;
  fs.mkdirSync(dir, { recursive: true });
  const endpoint = (opts.endpoint ?? hubEndpoint()).replace(/\/+$/, "");
  const manual = manualDownloadInstructions(key, cacheDir, endpoint);
  const url = (f: string) => `${endpoint}/${source.repo}/resolve/main/${f}`;
  // config.json is a small git file: no size or hash from the Hub, it is checked by parsing it
  if (!configOk(dir)) await download(url(CONFIG_FILE), path.join(dir, CONFIG_FILE), NO_CHECKS, opts, manual);
  const weights = path.join(dir, WEIGHTS_FILE);
  if (!weightsOk(weights, source.weights)) {
    // a damaged or partial model.safetensors is never used; if it is a cut-off download, it is resumed
    if (fs.existsSync(weights)) fs.renameSync(weights, weights + ".part");
    const want = source.weights ?? (await probe(url(WEIGHTS_FILE), manual));
    await download(url(WEIGHTS_FILE), weights, want, opts, manual);
  }
  return dir;
}

function configOk(dir: string): boolean {
  try {
    readGPT2Config(dir);
    return true;
  } catch {
    return false;
  }
}

/** A cached folder is usable when config.json reads and model.safetensors is complete. */
function isComplete(dir: string, known?: KnownFile): boolean {
  return configOk(dir) && weightsOk(path.join(dir, WEIGHTS_FILE), known);
}

/** True when the file has the pinned size (if any) and ends exactly where its header says. */
function weightsOk(file: string, known?: KnownFile): boolean {
  if (!fs.existsSync(file)) return false;
  if (known && fs.statSync(file).size !== known.size) return false;
  try {
    const st = SafetensorsFile.open(file);
    const complete = st.isComplete();
    st.close();
    return complete;
  } catch {
    return false;
  }
}

/** What a finished download must match; null where unknown. */
interface Expected {
  size: number | null;
  sha256: string | null;
}
const NO_CHECKS: Expected = { size: null, sha256: null };

/** Expected size and SHA-256 from the Hub's headers: X-Linked-* on the redirect for LFS files. */
async function probe(url: string, manual: string): Promise<Expected> {
  const res = await request(url, { method: "HEAD", redirect: "manual" }, manual);
  const linkedSize = res.headers.get("x-linked-size");
  const etag = (res.headers.get("x-linked-etag") ?? "").replace(/^W\//, "").replace(/"/g, "");
  const sha256 = /^[0-9a-f]{64}$/.test(etag) ? etag : null;
  if (linkedSize !== null) return { size: Number(linkedSize), sha256 };
  if (res.status >= 300 && res.status < 400) {
    // no X-Linked-Size: ask where the redirect goes
    const follow = await request(new URL(res.headers.get("location") ?? "", url).href, { method: "HEAD" }, manual);
    return { size: contentLength(follow), sha256 };
  }
  return { size: contentLength(res), sha256 };
}

function contentLength(res: Response): number | null {
  const v = res.headers.get("content-length");
  return v === null ? null : Number(v);
}

/** fetch, with network failures and HTTP errors turned into a WeightsError that says what to do. */
async function request(url: string, init: RequestInit, manual: string): Promise<Response> {
  let res: Response;
  try {
    // identity: compressed transfer would make the byte counts disagree with the announced size
    res = await fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), "Accept-Encoding": "identity" } });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new WeightsError(`cannot reach ${new URL(url).host} (${cause?.code ?? cause?.message ?? (err as Error).message}); ${manual}`);
  }
  if (res.status >= 400) throw new WeightsError(`${url}: HTTP ${res.status} ${res.statusText}; ${manual}`);
  return res;
}

/**
 * Downloads `url` to `file` through `file.part`: resumes a partial file with a Range request,
 * then checks size and hash before renaming it into place.
 */
async function download(url: string, file: string, want: Expected, opts: EnsureWeightsOptions, manual: string): Promise<void> {
  const part = file + ".part";
  const name = path.basename(file);
  const expected = want.size;
  let have = fs.existsSync(part) ? fs.statSync(part).size : 0;
  // longer than the real file: not a prefix of it; size unknown: cannot tell, so start over
  if (expected === null || have > expected) have = 0;

  if (expected === null || have < expected) {
    const res = await request(url, have > 0 ? { headers: { Range: `bytes=${have}-` } } : {}, manual);
    // 206 continues our partial file; 200 means the server sent it all again, so start over
    if (res.status !== 206 || !(res.headers.get("content-range") ?? "").startsWith(`bytes ${have}-`)) have = 0;
    const total = expected ?? (contentLength(res) === null ? null : have + contentLength(res)!);
    const fd = fs.openSync(part, have > 0 ? "a" : "w");
    let last = 0;
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        writeAll(fd, chunk); // one writeSync may write less than the chunk
        have += chunk.length;
        if (Date.now() - last > 100) {
          last = Date.now();
          opts.onProgress?.({ file: name, received: have, total });
        }
      }
      fs.fsyncSync(fd);
    } catch (err) {
      throw new WeightsError(`download of ${url} stopped after ${have} bytes (${(err as Error).message}); run again to resume, or ${manual}`);
    } finally {
      fs.closeSync(fd);
    }
    opts.onProgress?.({ file: name, received: have, total });
  }
  verify(part, name, want, manual);
  fs.renameSync(part, file);
  syncDir(path.dirname(file));
}

/** Size, then SHA-256, then (for safetensors) the header: a file failing any is never used. */
function verify(part: string, name: string, want: Expected, manual: string): void {
  const size = fs.statSync(part).size;
  if (want.size !== null && size < want.size) {
    throw new WeightsError(`${name}: download incomplete (${size} of ${want.size} bytes); run again to resume, or ${manual}`);
  }
  if (want.size !== null && size !== want.size) {
    fs.rmSync(part);
    throw new WeightsError(`${name}: downloaded ${size} bytes but the server announced ${want.size}; the file was deleted, run again or ${manual}`);
  }
  if (want.sha256 !== null) {
    const got = sha256File(part);
    if (got !== want.sha256) {
      fs.rmSync(part);
      throw new WeightsError(`${name}: SHA-256 ${got} does not match the expected ${want.sha256}; the file was deleted, run again or ${manual}`);
    }
  }
  if (name === CONFIG_FILE) {
    try {
      JSON.parse(fs.readFileSync(part, "utf8"));
    } catch {
      fs.rmSync(part);
      throw new WeightsError(`${name}: the downloaded file is not JSON; it was deleted, run again or ${manual}`);
    }
  }
  if (name === WEIGHTS_FILE && !weightsOk(part)) {
    fs.rmSync(part);
    throw new WeightsError(`${name}: the downloaded file is not a complete safetensors file; it was deleted, run again or ${manual}`);
  }
}

function sha256File(file: string): string {
  const hash = crypto.createHash("sha256");
  const buf = Buffer.alloc(1 << 22);
  const fd = fs.openSync(file, "r");
  try {
    let got: number;
    while ((got = fs.readSync(fd, buf, 0, buf.length, null)) > 0) hash.update(buf.subarray(0, got));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest("hex");
}
