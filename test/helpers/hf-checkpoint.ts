/**
 * Test helpers that build small Hugging Face GPT-2 checkpoints by hand, without the
 * library's writer, so the loader is checked against an independent layout:
 * HF names, Conv1D (in, out) weights, the fused c_attn, optional lm_head.
 *
 * `writeRawSafetensors` writes arbitrary headers and dtypes, to craft damaged files.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { Rng } from "../../lib/core/random";

/** A tiny GPT-2 config.json. All sizes differ (V=11, T=7, C=6, 3C=18, 4C=24), so a
 *  transposed or mis-split tensor cannot pass the shape checks by accident. */
export const TINY_HF_CONFIG = { vocab_size: 11, n_positions: 7, n_embd: 6, n_layer: 2, n_head: 2 };

export interface HFTensor {
  shape: number[];
  data: Float32Array;
}

/** Values k/256 with |k| <= 128: exact in F32, F16 and BF16, so all three load identically. */
function exactValues(n: number, rng: Rng, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((rng.int(257) - 128) / 256) * scale;
  return out;
}

/** Every GPT-2 tensor for `cfg`, under its HF name (no "transformer." prefix). */
export function makeHFTensors(
  cfg = TINY_HF_CONFIG,
  opts: { seed?: number; lmHead?: boolean; buffers?: boolean } = {},
): Map<string, HFTensor> {
  const rng = new Rng(opts.seed ?? 7);
  const V = cfg.vocab_size, T = cfg.n_positions, C = cfg.n_embd;
  const t = new Map<string, HFTensor>();
  const add = (name: string, shape: number[], scale = 1) =>
    t.set(name, { shape, data: exactValues(shape.reduce((a, b) => a * b, 1), rng, scale) });
  add("wte.weight", [V, C]);
  add("wpe.weight", [T, C]);
  for (let i = 0; i < cfg.n_layer; i++) {
    const h = `h.${i}`;
    add(`${h}.ln_1.weight`, [C]);
    add(`${h}.ln_1.bias`, [C]);
    add(`${h}.attn.c_attn.weight`, [C, 3 * C]);
    add(`${h}.attn.c_attn.bias`, [3 * C]);
    add(`${h}.attn.c_proj.weight`, [C, C]);
    add(`${h}.attn.c_proj.bias`, [C]);
    add(`${h}.ln_2.weight`, [C]);
    add(`${h}.ln_2.bias`, [C]);
    add(`${h}.mlp.c_fc.weight`, [C, 4 * C]);
    add(`${h}.mlp.c_fc.bias`, [4 * C]);
    add(`${h}.mlp.c_proj.weight`, [4 * C, C]);
    add(`${h}.mlp.c_proj.bias`, [C]);
    if (opts.buffers) {
      // the causal mask and the masking constant older transformers versions saved
      const mask = new Float32Array(T * T);
      for (let r = 0; r < T; r++) for (let c = 0; c <= r; c++) mask[r * T + c] = 1;
      t.set(`${h}.attn.bias`, { shape: [1, 1, T, T], data: mask });
      t.set(`${h}.attn.masked_bias`, { shape: [], data: Float32Array.of(-1e4) });
    }
  }
  add("ln_f.weight", [C]);
  add("ln_f.bias", [C]);
  if (opts.lmHead) add("lm_head.weight", [V, C]);
  return t;
}

export type RawDtype = "F32" | "F16" | "BF16" | "F64" | "I64" | "I32" | string;

export interface RawEntry {
  name: string;
  dtype: RawDtype;
  shape: number[];
  bytes: Uint8Array;
  /** override the data_offsets written in the header (the bytes are still written in order) */
  offsets?: [number, number];
}

/** A safetensors file with exactly the given header facts, for damaged-file tests. */
export function writeRawSafetensors(file: string, entries: RawEntry[], metadata?: Record<string, string>): void {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const e of entries) {
    header[e.name] = { dtype: e.dtype, shape: e.shape, data_offsets: e.offsets ?? [offset, offset + e.bytes.length] };
    offset += e.bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...entries.map((e) => Buffer.from(e.bytes))]));
}

/** float32 -> IEEE half bits (round to nearest; the test values are exact anyway). */
export function toF16(data: Float32Array): Uint16Array {
  const out = new Uint16Array(data.length);
  for (let i = 0; i < data.length; i++) {
    const x = data[i];
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    if (a === 0) out[i] = sign;
    else if (!Number.isFinite(a)) out[i] = sign | 0x7c00 | (Number.isNaN(a) ? 1 : 0);
    else if (a < 2 ** -14) out[i] = sign | Math.round(a / 2 ** -24); // subnormal
    else {
      const e = Math.floor(Math.log2(a));
      out[i] = sign | ((e + 15) << 10) | Math.round((a / 2 ** e - 1) * 1024);
    }
  }
  return out;
}

/** float32 -> bfloat16 bits (the top 16 bits; exact for the test values). */
export function toBF16(data: Float32Array): Uint16Array {
  const bits = new Uint32Array(Float32Array.from(data).buffer);
  return Uint16Array.from(bits, (b) => b >>> 16);
}

const bytesOf = (a: Float32Array | Uint16Array | Float64Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/** Encodes float32 values in `dtype` for a raw entry. */
export function encode(data: Float32Array, dtype: "F32" | "F16" | "BF16" | "F64"): Uint8Array {
  if (dtype === "F16") return bytesOf(toF16(data));
  if (dtype === "BF16") return bytesOf(toBF16(data));
  if (dtype === "F64") return bytesOf(Float64Array.from(data));
  return bytesOf(data);
}

/** Writes `config.json` and `model.safetensors` into `dir` (created), HF layout. */
export function writeHFDir(
  dir: string,
  tensors: Map<string, HFTensor>,
  opts: { config?: object; dtype?: "F32" | "F16" | "BF16"; prefix?: boolean } = {},
): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(opts.config ?? TINY_HF_CONFIG));
  const entries: RawEntry[] = [...tensors].map(([name, t]) => ({
    // transformers' GPT2LMHeadModel saves the body as transformer.*, lm_head outside it
    name: opts.prefix && name !== "lm_head.weight" ? `transformer.${name}` : name,
    dtype: opts.dtype ?? "F32",
    shape: t.shape,
    bytes: encode(t.data, opts.dtype ?? "F32"),
  }));
  writeRawSafetensors(path.join(dir, "model.safetensors"), entries, { format: "pt" });
  return dir;
}

/** A fresh temporary folder under the OS temp dir. */
export function tempDir(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `course-${tag}-`));
}

/** A safetensors file's JSON header, read independently of the library's reader. */
export function readRawHeader(file: string): Record<string, unknown> {
  const bytes = fs.readFileSync(file);
  const len = Number(bytes.readBigUInt64LE(0));
  return JSON.parse(bytes.subarray(8, 8 + len).toString("utf8"));
}
