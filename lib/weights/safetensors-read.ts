/**
 * Reading a safetensors file (the layout is in safetensors-format.ts).
 *
 * Every number in the header is hostile until checked: the header length against the file
 * size and the format's 100 MB cap, each shape against overflow, each tensor's byte count
 * against its shape and dtype, and every data_offsets pair against the data section, all
 * before a buffer sized by any of them is allocated. So a truncated download, a damaged file
 * or a crafted one gives a one-line `WeightsError` naming the file and the tensor, never a
 * wrong model, an out-of-memory abort or another exception.
 *
 * Tensors are read one at a time with `fs.readSync` at their offset, straight into a typed
 * array, so a 1.4 GB checkpoint is never held twice, and files past Node's 2 GiB Buffer
 * limit (gpt2-large, gpt2-xl) still load.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import { WeightsError } from "../core/errors";
import { bf16ToF32, f16ToF32 } from "./float16";
import { looksLikePickleFd, pickleRefusal } from "./pickle";
import { DTYPE_BYTES, FLOAT_DTYPES, MAX_HEADER_BYTES, TensorInfo, fmtShape, isKnownDtype, numel, quoted, swapBytes } from "./safetensors-format";

/** A tensor as `readSafetensors` returns it, converted to float32. */
export interface LoadedTensor {
  dtype: string;
  shape: number[];
  data: Float32Array;
}

/** Past this many elements `numel * 8` is no longer an exact integer: no real file comes near it. */
const MAX_ELEMENTS = Math.floor(Number.MAX_SAFE_INTEGER / 8);

/** An open safetensors file whose header has been fully validated. Call `close()` when done. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
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
    if (!t) throw new WeightsError(`${this.file}: missing tensor ${quoted(name)}`);
    return t;
  }

  /** Reads one tensor, converted to float32, and refuses NaN or Inf values. */
  readFloat32(name: string): Float32Array {
    const t = this.info(name);
    // the header check made n * DTYPE_BYTES[dtype] equal the tensor's bytes, inside the file
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
      `${this.file}: tensor ${quoted(name)} has dtype ${t.dtype}, which is not supported (supported: ${FLOAT_DTYPES.join(", ")})`,
    );
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /** True when the header's tensors end exactly at the end of the file (a complete download). */
  isComplete(): boolean {
    let last = 0;
    for (const t of this.tensors.values()) last = Math.max(last, t.end);
    return this.tensors.size === 0 || last === this.size;
  }

  /** Reads bytes [t.begin, t.end) into `dst`. */
  private readInto(t: TensorInfo, dst: Uint8Array): void {
    if (this.fd === null) throw new WeightsError(`${this.file}: already closed`);
    readFully(this.fd, dst, t.begin, () => `${this.file}: tensor ${quoted(t.name)}: file ended while reading (truncated file)`);
  }

  private parseHeader(): void {
    const f = this.file;
    const fd = this.fd!;
    if (looksLikePickleFd(fd)) throw new WeightsError(pickleRefusal(f));
    if (this.size < 8) {
      throw new WeightsError(`${f}: truncated file (${this.size} bytes): too short for the 8-byte header length`);
    }
    const lenBuf = Buffer.alloc(8);
    readFully(fd, lenBuf, 0, () => `${f}: truncated file: file ended while reading the header length`);
    // compared as a 64-bit integer: a length past 2^53 must not round down into range
    const rawLen = lenBuf.readBigUInt64LE(0);
    if (rawLen > BigInt(MAX_HEADER_BYTES)) {
      throw new WeightsError(`${f}: header length ${rawLen} is beyond the 100 MB limit: not a safetensors file, or damaged`);
    }
    const headerLen = Number(rawLen);
    if (8 + headerLen > this.size) {
      throw new WeightsError(`${f}: header length ${headerLen} goes beyond the end of the file (${this.size} bytes): truncated or not a safetensors file`);
    }
    const headerBuf = Buffer.alloc(headerLen);
    readFully(fd, headerBuf, 8, () => `${f}: truncated file: file ended while reading the header`);
    let header: unknown;
    try {
      header = JSON.parse(headerBuf.toString("utf8"));
    } catch (err) {
      throw new WeightsError(`${f}: malformed header JSON (${(err as Error).message.split("\n")[0]})`);
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) {
      throw new WeightsError(`${f}: malformed header JSON (expected an object of tensors)`);
    }
    const dataStart = 8 + headerLen;
    const dataLen = this.size - dataStart;
    for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
      if (name === "__metadata__") {
        // not used here, but a file that breaks the format's rule for it is not trusted either
        const strings = typeof entry === "object" && entry !== null && Object.values(entry).every((v) => typeof v === "string");
        if (!strings) throw new WeightsError(`${f}: malformed header JSON ("__metadata__" must map strings to strings)`);
        continue;
      }
      const t = parseEntry(f, name, entry);
      const want = numel(t.shape) * DTYPE_BYTES[t.dtype];
      if (t.end - t.begin !== want) {
        throw new WeightsError(
          `${f}: tensor ${quoted(name)}: data_offsets [${t.begin}, ${t.end}] cover ${t.end - t.begin} bytes, but shape ${fmtShape(t.shape)} of ${t.dtype} needs ${want}`,
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
        throw new WeightsError(`${f}: tensors ${quoted(p.name)} ${rel(p)} and ${quoted(t.name)} ${rel(t)} have overlapping data_offsets`);
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
      throw new WeightsError(`${f}: tensor ${quoted(past.name)}: data_offsets ${rel(past)} ${why}`);
    }
  }
}

/** Fills `dst` from position `at`, in a loop: readSync may return fewer bytes than asked. */
function readFully(fd: number, dst: Uint8Array, at: number, truncated: () => string): void {
  let done = 0;
  while (done < dst.length) {
    const chunk = Math.min(dst.length - done, 1 << 30);
    const got = fs.readSync(fd, dst, done, chunk, at + done);
    if (got === 0) throw new WeightsError(truncated());
    done += got;
  }
}

function parseEntry(f: string, name: string, entry: unknown): TensorInfo {
  const bad = (what: string) => new WeightsError(`${f}: tensor ${quoted(name)}: malformed header entry (${what})`);
  if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw bad("not an object");
  const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
  if (typeof e.dtype !== "string") throw bad("dtype is not a string");
  if (!isKnownDtype(e.dtype)) {
    throw new WeightsError(`${f}: tensor ${quoted(name)} has unknown dtype ${JSON.stringify(e.dtype)}, which is not supported (supported: ${FLOAT_DTYPES.join(", ")})`);
  }
  const isIndex = (v: unknown) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(e.shape) || !e.shape.every(isIndex)) throw bad("shape is not a list of non-negative integers");
  const shape = e.shape as number[];
  // multiplied one axis at a time, so a product past 2^53 is caught before it loses digits
  if (!shape.includes(0) && shape.reduce((n, d) => (n > MAX_ELEMENTS ? n : n * d), 1) > MAX_ELEMENTS) {
    throw bad(`shape ${fmtShape(shape)} has more elements than any file can hold`);
  }
  const o = e.data_offsets;
  if (!Array.isArray(o) || o.length !== 2 || !o.every(isIndex) || o[0] > o[1]) {
    throw bad("data_offsets is not [begin, end] with 0 <= begin <= end");
  }
  return { name, dtype: e.dtype, shape, begin: o[0], end: o[1] };
}

function checkFinite(file: string, name: string, data: Float32Array): Float32Array {
  for (let i = 0; i < data.length; i++) {
    // x - x is 0 for every finite x and NaN for NaN and ±Inf: one test, no branches on the common path
    if (data[i] - data[i] !== 0) {
      const what = Number.isNaN(data[i]) ? "NaN" : "Inf";
      throw new WeightsError(`${file}: tensor ${quoted(name)} contains ${what} (at flat index ${i})`);
    }
  }
  return data;
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
