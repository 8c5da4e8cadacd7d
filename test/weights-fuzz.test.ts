// Property-based fuzzing of the weight reader and the GPT-2 folder loader (fast-check): thousands
// of mutated safetensors files (header length, header JSON, dtypes, shapes, offsets, extra and
// missing keys, non-numbers, huge numbers, truncation, random bytes, NaN in the data) and
// config.json values. Each must end in a valid result or a one-line CourseError naming the
// file, never another exception, and never with a buffer larger than the file can fill.
//
// Seeded, so a failure reproduces: fast-check prints the seed and the shrunk case; rerun with
// FUZZ_SEED=<seed> to replay it (FUZZ_RUNS=<n> for a longer hunt).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import fc from "fast-check";
import { initEngine } from "../lib/engine";
import { CourseError } from "../lib/core/errors";
import { SafetensorsFile } from "../lib/weights/safetensors-read";
import { loadGPT2Directory } from "../lib/weights/gpt2-directory";
import { HFTensor, TINY_HF_CONFIG, encode, makeHFTensors, tempDir } from "./helpers/hf-checkpoint";

const SEED = Number(process.env.FUZZ_SEED ?? 20250607);
const RUNS = Number(process.env.FUZZ_RUNS ?? 1);
const root = tempDir("weights-fuzz");
after(() => fs.rmSync(root, { recursive: true, force: true }));

// ---- allocation spy: every typed array, ArrayBuffer and Buffer made while `spy.on` -------------
const spy = { on: false, largest: 0, total: 0 };
const ARRAY_TYPES = ["Float32Array", "Float64Array", "Uint8Array", "Uint16Array", "Uint32Array", "Int8Array", "Int16Array", "Int32Array", "Uint8ClampedArray", "ArrayBuffer"] as const;
const originals = new Map<string, unknown>();
function count(bytes: number): void {
  if (!spy.on) return;
  spy.largest = Math.max(spy.largest, bytes);
  spy.total += bytes;
}
/** Bytes a constructor call asks for: `new T(n)`, `new T(arrayLike)`; a view on a buffer asks for none. */
function requested(bytesPerElement: number, args: unknown[]): number {
  const a = args[0];
  if (typeof a === "number") return a * bytesPerElement;
  if (a instanceof ArrayBuffer || (typeof SharedArrayBuffer !== "undefined" && a instanceof SharedArrayBuffer)) return 0;
  if (a !== null && typeof a === "object" && typeof (a as { length?: unknown }).length === "number") return (a as { length: number }).length * bytesPerElement;
  return 0;
}
before(async () => {
  // the CPU backend keeps tensors in JavaScript typed arrays, so building the model is counted too
  await initEngine({ backend: "cpu", log: () => {} });
  const g = globalThis as unknown as Record<string, unknown>;
  for (const name of ARRAY_TYPES) {
    const Ctor = g[name] as { new (...a: unknown[]): object; BYTES_PER_ELEMENT?: number };
    originals.set(name, Ctor);
    const bpe = Ctor.BYTES_PER_ELEMENT ?? 1;
    // a Proxy, so `instanceof`, statics (`Float32Array.from` constructs through it) and prototypes still work
    g[name] = new Proxy(Ctor, {
      construct(target, args, newTarget) {
        count(requested(bpe, args));
        return Reflect.construct(target, args, newTarget === g[name] ? target : newTarget);
      },
    });
  }
  for (const fn of ["alloc", "allocUnsafe", "allocUnsafeSlow"] as const) {
    const orig = Buffer[fn] as (size: number, ...rest: unknown[]) => Buffer;
    originals.set(`Buffer.${fn}`, orig);
    (Buffer as unknown as Record<string, unknown>)[fn] = (size: number, ...rest: unknown[]) => {
      count(size);
      return orig.call(Buffer, size, ...rest);
    };
  }
});
after(() => {
  const g = globalThis as unknown as Record<string, unknown>;
  for (const name of ARRAY_TYPES) g[name] = originals.get(name);
  for (const fn of ["alloc", "allocUnsafe", "allocUnsafeSlow"] as const) (Buffer as unknown as Record<string, unknown>)[fn] = originals.get(`Buffer.${fn}`);
});

/**
 * Runs `work` with the spy on; returns "ok" or "refused" (a one-line CourseError naming `names`),
 * and fails on any other exception or on a buffer larger than twice the file: the reader widens
 * at most 2-byte values to float32, so nothing it makes from a file needs more.
 */
const FIXED_SCRATCH = 64; // the reader's fixed-size buffers: 4 bytes to spot a pickle, 8 for the header length
/** Bytes made in all per file byte: the model (2x at most), the values read (3x), their splits and tensor copies. */
const TOTAL_FACTOR = 12;
async function outcome(work: () => unknown, fileBytes: number, names: string): Promise<"ok" | "refused"> {
  spy.largest = 0;
  spy.total = 0;
  spy.on = true;
  let result: "ok" | "refused";
  try {
    await work();
    result = "ok";
  } catch (err) {
    spy.on = false;
    if (!(err instanceof CourseError)) throw err;
    assert.ok(!err.message.includes("\n"), `not one line: ${JSON.stringify(err.message)}`);
    assert.ok(err.message.includes(names), `does not name ${names}: ${err.message}`);
    result = "refused";
  } finally {
    spy.on = false;
  }
  assert.ok(spy.largest <= 2 * fileBytes + FIXED_SCRATCH, `a buffer of ${spy.largest} bytes for a file of ${fileBytes}`);
  // all of them together: a few copies of the model, never a number of them that the file chose
  assert.ok(spy.total <= TOTAL_FACTOR * (fileBytes + FIXED_SCRATCH), `${spy.total} bytes of buffers in all for a file of ${fileBytes}`);
  return result;
}

// ---- the files: a tiny GPT-2 checkpoint, then mutations -----------------------------------------
type Header = Record<string, unknown>;
const DTYPES = ["F32", "F16", "BF16", "F64"] as const;

/** A valid header and data section for the tiny GPT-2 in `dtype`, with or without prefix, lm_head, mask buffers. */
function baseFile(v: { dtype: (typeof DTYPES)[number]; prefix: boolean; lmHead: boolean; buffers: boolean; seed: number }): { header: Header; data: Uint8Array } {
  const tensors: Map<string, HFTensor> = makeHFTensors(TINY_HF_CONFIG, { seed: v.seed, lmHead: v.lmHead, buffers: v.buffers });
  const header: Header = { __metadata__: { format: "pt" } };
  const parts: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = encode(t.data, v.dtype);
    const key = v.prefix && name !== "lm_head.weight" ? `transformer.${name}` : name;
    header[key] = { dtype: v.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  return { header, data: Buffer.concat(parts) };
}

const hostileNumber = fc.oneof(
  fc.integer({ min: -3, max: 400 }),
  fc.constantFrom(-1, -0, 0.5, 1.5, 1e9, 2 ** 20 + 1, 2 ** 31, 2 ** 32, 2 ** 53, 2 ** 53 + 2, 2 ** 64, 1e21, 1e300, Number.MAX_VALUE, Number.MAX_SAFE_INTEGER),
  fc.double(), // NaN and ±Infinity become null in JSON
);
const hostileValue = fc.oneof(
  hostileNumber,
  fc.constantFrom("F32", "F16", "BF16", "F64", "I64", "U8", "BOOL", "toString", "__proto__", "constructor", "", "gelu_new"),
  fc.string({ maxLength: 8 }),
  fc.constantFrom(null, true, false),
  fc.array(hostileNumber, { maxLength: 4 }),
  fc.dictionary(fc.string({ maxLength: 4 }), hostileNumber, { maxKeys: 2 }),
);
/** Number literals JSON allows that JavaScript numbers cannot hold exactly. */
const numberText = fc.constantFrom("1e400", "-1e400", "18446744073709551616", "9007199254740993", "-0", "0.0", "1E2", "123456789012345678901234567890");
const pick = fc.nat(); // an index, taken modulo whatever it indexes at apply time
/** Tensor names, some of them made to break one-line messages or plain-object lookups. */
const tensorName = fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom("__proto__", "toString", "wte.weight", "lm_head.weight", "h.0.attn.bias", "a\nb", "transformer.wte.weight", "h.9.ln_1.weight"));

const headerMutation = fc.oneof(
  fc.record({ k: fc.constant("field" as const), i: pick, field: fc.constantFrom("dtype", "shape", "data_offsets"), value: hostileValue }),
  fc.record({ k: fc.constant("dim" as const), i: pick, d: pick, value: hostileNumber }),
  fc.record({ k: fc.constant("offset" as const), i: pick, which: fc.constantFrom(0, 1), value: hostileNumber }),
  fc.record({ k: fc.constant("dropField" as const), i: pick, field: fc.constantFrom("dtype", "shape", "data_offsets") }),
  fc.record({ k: fc.constant("extraField" as const), i: pick, key: fc.string({ maxLength: 6 }), value: hostileValue }),
  fc.record({ k: fc.constant("dropEntry" as const), i: pick }),
  fc.record({ k: fc.constant("replaceEntry" as const), i: pick, value: hostileValue }),
  fc.record({ k: fc.constant("addEntry" as const), name: tensorName, value: fc.oneof(hostileValue, fc.record({ dtype: hostileValue, shape: fc.array(hostileNumber, { maxLength: 3 }), data_offsets: fc.array(hostileNumber, { maxLength: 3 }) })) }),
  fc.record({ k: fc.constant("rename" as const), i: pick, name: tensorName }),
  fc.record({ k: fc.constant("metadata" as const), value: hostileValue }),
);
const textMutation = fc.oneof(
  fc.record({ k: fc.constant("numberText" as const), n: pick, text: numberText }),
  fc.record({ k: fc.constant("cutText" as const), at: pick }),
  fc.record({ k: fc.constant("notAnObject" as const), text: fc.constantFrom("[]", "null", "42", '"x"', "{", "") }),
);
const byteMutation = fc.oneof(
  fc.record({ k: fc.constant("length" as const), value: fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(0n, 1n, 7n, 8n, 100n * 1024n * 1024n + 1n, 1n << 53n, (1n << 64n) - 1n)), relative: fc.boolean() }),
  fc.record({ k: fc.constant("truncate" as const), at: pick }),
  fc.record({ k: fc.constant("flip" as const), at: pick, xor: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ k: fc.constant("nan" as const), at: pick, bits: fc.constantFrom(0x7fc00000, 0x7f800000, 0xff800000, 0x7e00) }),
  fc.record({ k: fc.constant("append" as const), bytes: fc.uint8Array({ maxLength: 16 }) }),
);
type HeaderMutation = typeof headerMutation extends fc.Arbitrary<infer T> ? T : never;
type TextMutation = typeof textMutation extends fc.Arbitrary<infer T> ? T : never;
type ByteMutation = typeof byteMutation extends fc.Arbitrary<infer T> ? T : never;

function mutateHeader(header: Header, m: HeaderMutation): void {
  const names = Object.keys(header).filter((n) => n !== "__metadata__");
  const name = names.length > 0 && "i" in m ? names[m.i % names.length] : undefined;
  const entry = name !== undefined && typeof header[name] === "object" && header[name] !== null ? (header[name] as Record<string, unknown>) : undefined;
  switch (m.k) {
    case "field": if (entry) entry[m.field] = m.value; break;
    case "dim": if (entry && Array.isArray(entry.shape) && entry.shape.length > 0) entry.shape[m.d % entry.shape.length] = m.value; break;
    case "offset": if (entry && Array.isArray(entry.data_offsets)) entry.data_offsets[m.which] = m.value; break;
    case "dropField": if (entry) delete entry[m.field]; break;
    case "extraField": if (entry) entry[m.key] = m.value; break;
    case "dropEntry": if (name !== undefined) delete header[name]; break;
    case "replaceEntry": if (name !== undefined) header[name] = m.value; break;
    case "addEntry": Object.defineProperty(header, m.name, { value: m.value, enumerable: true, writable: true, configurable: true }); break;
    case "rename":
      if (name !== undefined) {
        const v = header[name];
        delete header[name];
        Object.defineProperty(header, m.name, { value: v, enumerable: true, writable: true, configurable: true });
      }
      break;
    case "metadata": header.__metadata__ = m.value; break;
  }
}

function mutateText(text: string, m: TextMutation): string {
  if (m.k === "numberText") {
    const spots = [...text.matchAll(/-?\d+(\.\d+)?([eE][+-]?\d+)?/g)];
    if (spots.length === 0) return text;
    const s = spots[m.n % spots.length];
    return text.slice(0, s.index) + m.text + text.slice(s.index! + s[0].length);
  }
  if (m.k === "cutText") return text.slice(0, m.at % (text.length + 1));
  return m.text;
}

function mutateBytes(file: Buffer, m: ByteMutation): Buffer {
  switch (m.k) {
    case "length": {
      const out = Buffer.from(file.length >= 8 ? file : Buffer.concat([file, Buffer.alloc(8 - file.length)]));
      const v = m.relative ? BigInt.asUintN(64, out.readBigUInt64LE(0) + (m.value % 64n) - 32n) : m.value;
      out.writeBigUInt64LE(v, 0);
      return out;
    }
    case "truncate": return file.subarray(0, m.at % (file.length + 1));
    case "flip": {
      const out = Buffer.from(file);
      if (out.length > 0) out[m.at % out.length] ^= m.xor;
      return out;
    }
    case "nan": {
      const out = Buffer.from(file);
      if (out.length >= 4) out.writeUInt32LE(m.bits, m.at % (out.length - 3));
      return out;
    }
    case "append": return Buffer.concat([file, m.bytes]);
  }
}

/** Header text and data -> the file's bytes, with the header length prefix. */
function assemble(headerText: string, data: Uint8Array): Buffer {
  const json = Buffer.from(headerText, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, data]);
}

/** `arb` one time in five, else null. */
const rarely = <T>(arb: fc.Arbitrary<T>) => fc.oneof({ weight: 4, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: arb });

const variant = fc.record({ dtype: fc.constantFrom(...DTYPES), prefix: fc.boolean(), lmHead: fc.boolean(), buffers: fc.boolean(), seed: fc.integer({ min: 1, max: 1000 }) });
/** A mutated safetensors file, as the recipe (so a failure prints the mutations, not kilobytes). */
const safetensorsRecipe = fc.oneof(
  { weight: 9, arbitrary: fc.record({
    v: variant,
    header: fc.array(headerMutation, { maxLength: 3 }),
    text: rarely(textMutation),
    bytes: fc.array(byteMutation, { maxLength: 2 }),
  }) },
  { weight: 1, arbitrary: fc.record({ random: fc.uint8Array({ maxLength: 300 }) }) },
);
type SafetensorsRecipe = typeof safetensorsRecipe extends fc.Arbitrary<infer T> ? T : never;

/** A valid file with the recipe's header, text and byte mutations applied in that order, or its random bytes. */
function cook(r: SafetensorsRecipe): Buffer {
  if ("random" in r) return Buffer.from(r.random);
  const base = baseFile(r.v);
  for (const m of r.header) mutateHeader(base.header, m);
  let headerText = JSON.stringify(base.header);
  if (r.text !== null) headerText = mutateText(headerText, r.text);
  return r.bytes.reduce(mutateBytes, assemble(headerText, base.data));
}

/** fast-check's run settings: seeded, and the failing case's own error in the report. */
const settings = (numRuns: number) => ({ seed: SEED, numRuns: numRuns * RUNS, includeErrorInReport: true });

test("mutated safetensors files: each read ends in float32 tensors or a one-line WeightsError, within the file's size", async () => {
  const file = path.join(root, "fuzz.safetensors");
  const seen = { ok: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(safetensorsRecipe, async (recipe) => {
      const bytes = cook(recipe);
      fs.writeFileSync(file, bytes);
      const result = await outcome(() => {
        const st = SafetensorsFile.open(file);
        try {
          for (const name of st.names()) st.readFloat32(name);
          st.isComplete();
        } finally {
          st.close();
        }
      }, bytes.length, file);
      seen[result]++;
    }),
    settings(2500),
  );
  // the mutations must leave some files valid, or the property only checks refusals
  assert.ok(seen.ok > 50 && seen.refused > 1000, JSON.stringify(seen));
});

/** config.json's keys, and values from plausible to absurd. */
const configKey = fc.constantFrom("vocab_size", "n_positions", "n_ctx", "n_embd", "n_head", "n_layer", "n_inner", "layer_norm_epsilon", "resid_pdrop", "embd_pdrop", "attn_pdrop", "activation_function", "tie_word_embeddings");
const configNumber = fc.oneof(fc.constantFrom(1, 2, 3, 6, 7, 11, 12, 24, 1e-5, 0.1, 0.99, 1, 1024, 1025, 2 ** 16 + 1, 2 ** 20 + 1, 1e9, 1e15, 2 ** 53, 1e300), hostileNumber);
const configMutation = fc.oneof(
  fc.record({ k: fc.constant("set" as const), key: fc.oneof(configKey, fc.string({ maxLength: 6 })), value: fc.oneof(configNumber, hostileValue) }),
  fc.record({ k: fc.constant("drop" as const), key: configKey }),
);

test("mutated config.json values (and some mutated weights): each load ends in a model or a one-line CourseError, within the file's size", async () => {
  const dir = path.join(root, "folder");
  fs.mkdirSync(dir, { recursive: true });
  const tensorsBefore = tf.memory().numTensors;
  const seen = { ok: 0, refused: 0 };
  await fc.assert(
    fc.asyncProperty(
      variant,
      fc.array(configMutation, { minLength: 1, maxLength: 3 }),
      rarely(textMutation),
      fc.array(fc.oneof(headerMutation.map((header) => ({ header })), byteMutation.map((bytes) => ({ bytes })), fc.constant({})), { maxLength: 1 }),
      async (v, configMutations, configText, weightMutations) => {
        const config: Record<string, unknown> = { ...TINY_HF_CONFIG, n_ctx: TINY_HF_CONFIG.n_positions };
        for (const m of configMutations) {
          if (m.k === "set") Object.defineProperty(config, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
          else delete config[m.key];
        }
        let text = JSON.stringify(config);
        if (configText !== null) text = mutateText(text, configText);
        const base = baseFile(v);
        for (const m of weightMutations) if ("header" in m) mutateHeader(base.header, m.header);
        let bytes = assemble(JSON.stringify(base.header), base.data);
        for (const m of weightMutations) if ("bytes" in m) bytes = mutateBytes(bytes, m.bytes);
        fs.writeFileSync(path.join(dir, "config.json"), text);
        fs.writeFileSync(path.join(dir, "model.safetensors"), bytes);
        const result = await outcome(async () => {
          const model = await loadGPT2Directory(dir);
          model.dispose();
        }, bytes.length, dir);
        seen[result]++;
        assert.equal(tf.memory().numTensors, tensorsBefore, "tensors left behind");
      },
    ),
    settings(800),
  );
  assert.ok(seen.ok > 20 && seen.refused > 300, JSON.stringify(seen));
});
