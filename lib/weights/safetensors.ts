/**
 * The safetensors format, read and written by hand (no Python, no native addon).
 *
 *   bytes 0..7      N, the header length, unsigned 64-bit little-endian
 *   bytes 8..8+N    a JSON header: { "<name>": { "dtype": "F32", "shape": [768, 2304],
 *                   "data_offsets": [begin, end] }, ..., "__metadata__": { "<k>": "<v>" } }
 *   bytes 8+N..     the raw little-endian tensor data; offsets count from here
 *
 * Unlike a PyTorch pickle, nothing in the file is ever executed: the header is JSON
 * and the rest is numbers. Every header fact is checked before a byte of data is
 * used, so a truncated download or a damaged file gives a one-line `WeightsError`
 * that names the file and the tensor, never a wrong model.
 *
 * Tensors are read one at a time with `fs.readSync` at their offset, straight into
 * a Float32Array, so a 1.4 GB checkpoint is never held twice, and files past
 * Node's 2 GiB Buffer limit (gpt2-large, gpt2-xl) still load.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { WeightsError } from "../core/errors";
import { bf16ToF32, f16ToF32 } from "./float16";

/** Bytes per element of every dtype the format defines (others are rejected as unknown). */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};

/** The dtypes `readFloat32` converts; GPT-2 checkpoints are F32, sometimes F16 or BF16. */
export const FLOAT_DTYPES = ["F32", "F16", "BF16", "F64"] as const;

/** The official format caps the header at 100 MB; a larger length means a damaged file. */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

/** One tensor's entry in the header. `begin`/`end` are absolute positions in the file. */
export interface TensorInfo {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

/** A tensor as the writer takes it: float32 values, given directly or made on demand
 *  (so a 1.4 GB model is downloaded from the engine one tensor at a time). */
export interface TensorToWrite {
  shape: number[];
  data: Float32Array | (() => Float32Array);
}

/** A tensor as `readSafetensors` returns it, converted to float32. */
export interface LoadedTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

/** `[2, 3]` -> `[2, 3]` as text, for messages. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Pickle protocol 2–5 starts with 0x80 <proto>; torch.save's zip format starts with "PK\x03\x04". */
function looksLikePickle(head: Buffer): boolean {
  return (head[0] === 0x80 && head[1] >= 2 && head[1] <= 5) ||
    (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04);
}

/** The one message for any PyTorch pickle checkpoint, with the one-time conversion. */
export function pickleRefusal(file: string): string {
  return `${file}: PyTorch pickle checkpoints (.bin, .pth, .pt, .ckpt) are not loaded, because unpickling can execute arbitrary code; ` +
    `convert it once to model.safetensors in Python (pip install safetensors torch): ` +
    `python -c "import torch; from safetensors.torch import save_file; sd = torch.load('${path.basename(file)}', map_location='cpu', weights_only=True); ` +
    `save_file({k: v.clone().contiguous() for k, v in sd.items()}, 'model.safetensors')"`;
}

/** An open safetensors file whose header has been fully validated. Call `close()` when done. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  /** Total file size in bytes. */
  readonly size: number;
  private fd: number | null;

  private constructor(readonly file: string, fd: number) {
    this.fd = fd;
    try {
      this.size = fs.fstatSync(fd).size;
      this.parseHeader();
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Opens `file` and validates its header (not yet the values: see `readFloat32`). */
  static open(file: string): SafetensorsFile {
    let fd: number;
    try {
      fd = fs.openSync(file, "r");
    } catch (err) {
      throw new WeightsError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    return new SafetensorsFile(file, fd);
  }

  /** Tensor names in file order (by data offset). */
  names(): string[] {
    return [...this.tensors.values()].sort((a, b) => a.begin - b.begin).map((t) => t.name);
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new WeightsError(`${this.file}: missing tensor "${name}"`);
    return t;
  }

  /** Reads one tensor, converted to float32, and refuses NaN or Inf values. */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    const n = numel(t.shape);
    if (t.dtype === "F32") {
      const out = new Float32Array(n);
      this.readInto(t, new Uint8Array(out.buffer));
      if (os.endianness() === "BE") swapBytes(new Uint8Array(out.buffer), 4);
      return checkFinite(this.file, name, out);
    }
    if (t.dtype === "F64") {
      const raw = new Float64Array(n);
      this.readInto(t, new Uint8Array(raw.buffer));
      if (os.endianness() === "BE") swapBytes(new Uint8Array(raw.buffer), 8);
      return checkFinite(this.file, name, Float32Array.from(raw));
    }
    if (t.dtype === "F16" || t.dtype === "BF16") {
      const raw = new Uint16Array(n);
      this.readInto(t, new Uint8Array(raw.buffer));
      if (os.endianness() === "BE") swapBytes(new Uint8Array(raw.buffer), 2);
      const out = t.dtype === "F16" ? f16ToF32(raw) : bf16ToF32(raw);
      return checkFinite(this.file, name, out);
    }
    throw new WeightsError(
      `${this.file}: tensor "${name}" has dtype ${t.dtype}, which is not supported (supported: ${FLOAT_DTYPES.join(", ")})`,
    );
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /** Reads bytes [t.begin, t.end) into `dst`, in a loop: readSync may return fewer bytes. */
  private readInto(t: TensorInfo, dst: Uint8Array): void {
    if (this.fd === null) throw new WeightsError(`${this.file}: already closed`);
    let done = 0;
    while (done < dst.length) {
      const chunk = Math.min(dst.length - done, 1 << 30);
      const got = fs.readSync(this.fd, dst, done, chunk, t.begin + done);
      if (got === 0) throw new WeightsError(`${this.file}: tensor "${t.name}": file ended while reading (truncated file)`);
      done += got;
    }
  }

  private parseHeader(): void {
    const f = this.file;
    if (looksLikePickleFd(this.fd!)) throw new WeightsError(pickleRefusal(f));
    if (this.size < 8) {
      throw new WeightsError(`${f}: truncated file (${this.size} bytes): too short for the 8-byte header length`);
    }
    const lenBuf = Buffer.alloc(8);
    fs.readSync(this.fd!, lenBuf, 0, 8, 0);
    const headerLen = Number(lenBuf.readBigUInt64LE(0));
    if (headerLen > MAX_HEADER_BYTES) {
      throw new WeightsError(`${f}: header length ${headerLen} is beyond the 100 MB limit: not a safetensors file, or damaged`);
    }
    if (8 + headerLen > this.size) {
      throw new WeightsError(`${f}: header length ${headerLen} goes beyond the end of the file (${this.size} bytes): truncated or not a safetensors file`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    fs.readSync(this.fd!, headerBuf, 0, headerLen, 8);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch (err) {
      throw new WeightsError(`${f}: malformed header JSON (${(err as Error).message})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new WeightsError(`${f}: malformed header JSON (expected an object of tensors)`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = this.size - dataStart;
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        const strings = typeof entry === "object" && entry !== null && Object.values(entry).every((v) => typeof v === "string");
        if (!strings) throw new WeightsError(`${f}: malformed header JSON ("__metadata__" must map strings to strings)`);
        Object.assign(this.metadata, entry);
        continue;
      }
      const t = parseEntry(f, name, entry);
      const want = numel(t.shape) * DTYPE_BYTES[t.dtype];
      if (t.end - t.begin !== want) {
        throw new WeightsError(
          `${f}: tensor "${name}": data_offsets [${t.begin}, ${t.end}] cover ${t.end - t.begin} bytes, but shape ${fmtShape(t.shape)} of ${t.dtype} needs ${want}`,
        );
      }
      this.tensors.set(name, { ...t, begin: dataStart + t.begin, end: dataStart + t.end });
    }
    this.checkLayout(dataStart, dataLen);
  }

  /** Offsets must stay inside the data and must not overlap. */
  private checkLayout(dataStart: number, dataLen: number): void {
    const f = this.file;
    const sorted = [...this.tensors.values()].sort((a, b) => a.begin - b.begin || a.end - b.end);
    const rel = (t: TensorInfo) => `[${t.begin - dataStart}, ${t.end - dataStart}]`;
    let covered = 0; // bytes described so far when tensors follow each other with no gap
    let contiguous = true;
    for (let i = 0; i < sorted.length; i++) {
      const t = sorted[i];
      if (i > 0 && t.begin < sorted[i - 1].end) {
        const p = sorted[i - 1];
        throw new WeightsError(`${f}: tensors "${p.name}" ${rel(p)} and "${t.name}" ${rel(t)} have overlapping data_offsets`);
      }
      if (t.begin - dataStart !== covered) contiguous = false;
      covered = t.end - dataStart;
    }
    const past = sorted.find((t) => t.end - dataStart > dataLen);
    if (past) {
      // a header describing back-to-back tensors that run past the end is a cut-off download
      const why = contiguous
        ? `go past the end: the file is truncated (the header describes ${covered} data bytes, the file has ${dataLen}); download it again`
        : `are out of range (the data section has ${dataLen} bytes)`;
      throw new WeightsError(`${f}: tensor "${past.name}": data_offsets ${rel(past)} ${why}`);
    }
  }

  /** True when the header's tensors end exactly at the end of the file (a complete download). */
  isComplete(): boolean {
    let last = 0;
    for (const t of this.tensors.values()) last = Math.max(last, t.end);
    return this.tensors.size === 0 || last === this.size;
  }
}

function looksLikePickleFd(fd: number): boolean {
  const head = Buffer.alloc(4);
  const got = fs.readSync(fd, head, 0, 4, 0);
  return got >= 2 && looksLikePickle(head);
}

function parseEntry(f: string, name: string, entry: unknown): Omit<TensorInfo, "name"> & { name: string } {
  const bad = (what: string) => new WeightsError(`${f}: tensor "${name}": malformed header entry (${what})`);
  if (typeof entry !== "object" || entry === null) throw bad("not an object");
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== "string") throw bad("dtype is not a string");
  if (!(e.dtype in DTYPE_BYTES)) {
    throw new WeightsError(`${f}: tensor "${name}" has unknown dtype ${JSON.stringify(e.dtype)}, which is not supported (supported: ${FLOAT_DTYPES.join(", ")})`);
  }
  const isIndex = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isIndex)) throw bad("shape is not a list of non-negative integers");
  const o = e.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || !o.every(isIndex) || o[0] > o[1]) {
    throw bad("data_offsets is not [begin, end] with 0 <= begin <= end");
  }
  return { name, dtype: e.dtype, shape: e.shape as number[], begin: o[0], end: o[1] };
}

function checkFinite(file: string, name: string, data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Inf: one test, no branches on the common path
    if (data[i] - data[i] !== 0) {
      const what = Number.isNaN(data[i]) ? "NaN" : "Inf";
      throw new WeightsError(`${file}: tensor "${name}" contains ${what} (at flat index ${i})`);
    }
  }
  return data;
}

function swapBytes(bytes: Uint8Array, width: number): void {
  for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
}

/**
 * Reads every tensor of a safetensors file as float32. Tensors for which `skip(name, info)`
 * is true are not read (e.g. GPT-2's `attn.bias` mask buffers).
 */
export function readSafetensors(
  file: string,
  opts: { skip?: (name: string, info: TensorInfo) => boolean } = {},
): Map<string, LoadedTensor> {
  const st = SafetensorsFile.open(file);
  try {
    const out = new Map<string, LoadedTensor>();
    for (const name of st.names()) {
      const info = st.info(name);
      if (opts.skip?.(name, info)) continue;
      out.set(name, { dtype: info.dtype, shape: info.shape, data: st.readFloat32(name) });
    }
    return out;
  } finally {
    st.close();
  }
}

/**
 * Writes float32 tensors as a safetensors file, atomically (lib/core/atomic-file.ts): a crash
 * at any moment leaves either the old file or the new one, never half of one.
 */
export function writeSafetensors(
  file: string,
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const [name, t] of entries) {
    const bytes = numel(t.shape) * 4;
    header[name] = { dtype: "F32", shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  // pad the header with spaces so the data starts 8-byte aligned, as the reference writer does
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBuf = Buffer.from(json, "utf8");
  const lenBuf = Buffer.alloc(8);
  lenBuf.writeBigUInt64LE(BigInt(headerBuf.length));

  writeFileAtomic(file, (fd) => {
    writeAll(fd, lenBuf);
    writeAll(fd, headerBuf);
    for (const [name, t] of entries) {
      const data = typeof t.data === "function" ? t.data() : t.data;
      if (data.length !== numel(t.shape)) {
        throw new WeightsError(`${file}: tensor "${name}": ${data.length} values do not fill shape ${fmtShape(t.shape)}`);
      }
      const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      if (os.endianness() === "BE") {
        const copy = Uint8Array.from(bytes);
        swapBytes(copy, 4);
        writeAll(fd, copy);
      } else {
        writeAll(fd, bytes);
      }
    }
  });
}
