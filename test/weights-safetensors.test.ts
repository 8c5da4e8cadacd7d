// The safetensors reader and writer: round trips, dtype conversion, atomic writes,
// and a one-line WeightsError naming the file and the tensor for each damaged file.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { WeightsError } from "../lib/core/errors";
import { SafetensorsFile, readSafetensors } from "../lib/weights/safetensors-read";
import { writeSafetensors } from "../lib/weights/safetensors-write";
import { encode, readRawHeader, tempDir, writeRawSafetensors } from "./helpers/hf-checkpoint";

const dir = tempDir("safetensors");
after(() => fs.rmSync(dir, { recursive: true, force: true }));
const f32 = (...v: number[]) => Float32Array.from(v);
const bytes = (...v: number[]) => encode(f32(...v), "F32");

/** Asserts that `fn` throws a one-line WeightsError matching every pattern. */
function throwsWeights(fn: () => unknown, ...patterns: RegExp[]): string {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof WeightsError, `expected a WeightsError, got ${String(caught)}`);
  const msg = (caught as Error).message;
  assert.ok(!msg.includes("\n"), `message is not one line: ${msg}`);
  for (const p of patterns) assert.match(msg, p);
  return msg;
}

test("write then read gives back names, shapes, values and metadata; data is 8-byte aligned", () => {
  const file = path.join(dir, "round.safetensors");
  writeSafetensors(file, {
    a: { shape: [2, 3], data: f32(1, 2, 3, 4, 5, -6.5) },
    b: { shape: [], data: f32(0.25) },
    c: { shape: [3], data: () => f32(7, 8, 9) },
  }, { format: "pt" });
  const back = readSafetensors(file);
  assert.deepEqual([...back.keys()], ["a", "b", "c"]);
  assert.deepEqual(back.get("a")!.shape, [2, 3]);
  assert.deepEqual([...back.get("a")!.data], [1, 2, 3, 4, 5, -6.5]);
  assert.deepEqual(back.get("b")!.shape, []);
  assert.deepEqual([...back.get("c")!.data], [7, 8, 9]);
  const st = SafetensorsFile.open(file);
  assert.deepEqual(readRawHeader(file).__metadata__, { format: "pt" });
  assert.ok(st.isComplete());
  const headerLen = Number(fs.readFileSync(file).readBigUInt64LE(0));
  assert.equal((8 + headerLen) % 8, 0);
  st.close();
});

test("the writer is atomic: a failure mid-write leaves the old file and no temporary file", () => {
  const sub = path.join(dir, "atomic");
  fs.mkdirSync(sub);
  const file = path.join(sub, "m.safetensors");
  writeSafetensors(file, { x: { shape: [2], data: f32(1, 2) } });
  const before = fs.readFileSync(file);
  assert.throws(() =>
    writeSafetensors(file, {
      x: { shape: [2], data: f32(3, 4) },
      y: { shape: [2], data: () => { throw new Error("engine died"); } },
    }), /engine died/);
  assert.deepEqual(fs.readFileSync(file), before);
  assert.deepEqual(fs.readdirSync(sub), ["m.safetensors"]);
  // and a success replaces it, again leaving no temporary file
  writeSafetensors(file, { x: { shape: [2], data: f32(3, 4) } });
  assert.deepEqual([...readSafetensors(file).get("x")!.data], [3, 4]);
  assert.deepEqual(fs.readdirSync(sub), ["m.safetensors"]);
});

test("F16, BF16 and F64 are converted to float32 exactly (including f16 subnormals)", () => {
  const file = path.join(dir, "dtypes.safetensors");
  const vals = f32(0, -0.5, 1.75, -3, 0.00390625, 65504);
  writeRawSafetensors(file, [
    { name: "h", dtype: "F16", shape: [6], bytes: encode(vals, "F16") },
    { name: "b", dtype: "BF16", shape: [2, 3], bytes: encode(f32(0, -0.5, 1.75, -3, 0.00390625, 65536), "BF16") },
    { name: "d", dtype: "F64", shape: [6], bytes: encode(vals, "F64") },
    // f16 bits 0x0001 is the smallest subnormal, 2^-24; 0x8400 is -2^-14
    { name: "sub", dtype: "F16", shape: [2], bytes: new Uint8Array(Uint16Array.of(0x0001, 0x8400).buffer) },
  ]);
  const t = readSafetensors(file);
  assert.deepEqual([...t.get("h")!.data], [...vals]);
  assert.deepEqual([...t.get("b")!.data], [0, -0.5, 1.75, -3, 0.00390625, 65536]);
  assert.deepEqual([...t.get("d")!.data], [...vals]);
  assert.deepEqual([...t.get("sub")!.data], [2 ** -24, -(2 ** -14)]);
});

test("a file shorter than the 8-byte length is truncated", () => {
  const file = path.join(dir, "tiny.safetensors");
  fs.writeFileSync(file, Buffer.from([1, 2, 3]));
  throwsWeights(() => SafetensorsFile.open(file), /tiny\.safetensors: truncated file \(3 bytes\)/);
});

test("a download cut short names the first tensor past the end and says truncated", () => {
  const file = path.join(dir, "cut.safetensors");
  writeRawSafetensors(file, [
    { name: "a", dtype: "F32", shape: [2], bytes: bytes(1, 2) },
    { name: "b", dtype: "F32", shape: [3], bytes: bytes(3, 4, 5) },
  ]);
  const full = fs.readFileSync(file);
  fs.writeFileSync(file, full.subarray(0, full.length - 5));
  throwsWeights(() => SafetensorsFile.open(file), /cut\.safetensors: tensor "b": data_offsets \[8, 20\] go past the end: the file is truncated \(the header describes 20 data bytes, the file has 15\)/, /download it again/);
});

test("a header length beyond the file is refused", () => {
  const file = path.join(dir, "hdr.safetensors");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(5000n);
  fs.writeFileSync(file, Buffer.concat([len, Buffer.from('{"a":')]));
  throwsWeights(() => SafetensorsFile.open(file), /hdr\.safetensors: header length 5000 goes beyond the end of the file \(13 bytes\)/);
});

test("malformed header JSON is refused", () => {
  const file = path.join(dir, "json.safetensors");
  const body = Buffer.from('{"a": {"dtype": "F32",,}}');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  fs.writeFileSync(file, Buffer.concat([len, body]));
  throwsWeights(() => SafetensorsFile.open(file), /json\.safetensors: malformed header JSON/);
});

test("__metadata__ that is not string to string is refused", () => {
  const file = path.join(dir, "meta.safetensors");
  writeRawSafetensors(file, [], { format: 1 } as unknown as Record<string, string>);
  throwsWeights(() => SafetensorsFile.open(file), /meta\.safetensors: malformed header JSON \("__metadata__" must map strings to strings\)/);
});

test("a malformed entry names the tensor", () => {
  const file = path.join(dir, "entry.safetensors");
  writeRawSafetensors(file, [{ name: "w", dtype: "F32", shape: [-1], bytes: bytes(1) }]);
  throwsWeights(() => SafetensorsFile.open(file), /entry\.safetensors: tensor "w": malformed header entry \(shape/);
});

test("offsets out of range are refused, naming the tensor", () => {
  const file = path.join(dir, "range.safetensors");
  writeRawSafetensors(file, [
    { name: "a", dtype: "F32", shape: [1], bytes: bytes(1) },
    { name: "far", dtype: "F32", shape: [1], bytes: bytes(2), offsets: [96, 100] },
  ]);
  throwsWeights(() => SafetensorsFile.open(file), /range\.safetensors: tensor "far": data_offsets \[96, 100\] are out of range \(the data section has 8 bytes\)/);
});

test("overlapping tensors are refused, naming both", () => {
  const file = path.join(dir, "overlap.safetensors");
  writeRawSafetensors(file, [
    { name: "a", dtype: "F32", shape: [2], bytes: bytes(1, 2) },
    { name: "b", dtype: "F32", shape: [2], bytes: bytes(3, 4), offsets: [4, 12] },
  ]);
  throwsWeights(() => SafetensorsFile.open(file), /overlap\.safetensors: tensors "a" \[0, 8\] and "b" \[4, 12\] have overlapping data_offsets/);
});

test("offsets that do not match shape x dtype are refused", () => {
  const file = path.join(dir, "size.safetensors");
  writeRawSafetensors(file, [{ name: "w", dtype: "F32", shape: [2, 2], bytes: bytes(1, 2, 3) }]);
  throwsWeights(() => SafetensorsFile.open(file),
    /size\.safetensors: tensor "w": data_offsets \[0, 12\] cover 12 bytes, but shape \[2, 2\] of F32 needs 16/);
});

test("an unknown dtype is refused in the header; a known non-float one when read", () => {
  const file = path.join(dir, "dtype.safetensors");
  writeRawSafetensors(file, [{ name: "q", dtype: "Q4_K", shape: [2], bytes: new Uint8Array(2) }]);
  throwsWeights(() => SafetensorsFile.open(file), /dtype\.safetensors: tensor "q" has unknown dtype "Q4_K", which is not supported/);
  writeRawSafetensors(file, [{ name: "ids", dtype: "I64", shape: [2], bytes: new Uint8Array(16) }]);
  throwsWeights(() => readSafetensors(file), /dtype\.safetensors: tensor "ids" has dtype I64, which is not supported \(supported: F32, F16, BF16, F64\)/);
  // …unless the caller skips it, as the GPT-2 loader skips mask buffers
  assert.equal(readSafetensors(file, { skip: (n) => n === "ids" }).size, 0);
});

test("NaN and Inf values are refused with the tensor and the index", () => {
  const file = path.join(dir, "nan.safetensors");
  writeRawSafetensors(file, [
    { name: "ok", dtype: "F32", shape: [1], bytes: bytes(1) },
    { name: "bad", dtype: "F32", shape: [3], bytes: bytes(1, NaN, 2) },
  ]);
  throwsWeights(() => readSafetensors(file), /nan\.safetensors: tensor "bad" contains NaN \(at flat index 1\)/);
  writeRawSafetensors(file, [{ name: "inf16", dtype: "F16", shape: [2], bytes: new Uint8Array(Uint16Array.of(0, 0xfc00).buffer) }]);
  throwsWeights(() => readSafetensors(file), /nan\.safetensors: tensor "inf16" contains Inf \(at flat index 1\)/);
});

test("a pickle renamed to .safetensors is refused, never unpickled", () => {
  const file = path.join(dir, "pickle.safetensors");
  // protocol-2 pickle opcode stream, and torch.save's zip container
  fs.writeFileSync(file, Buffer.from([0x80, 0x02, 0x7d, 0x71, 0x00, 0x2e, 0, 0, 0]));
  throwsWeights(() => SafetensorsFile.open(file), /pickle\.safetensors: PyTorch pickle checkpoints .* are not loaded, because unpickling can execute arbitrary code/, /safetensors/);
  fs.writeFileSync(file, Buffer.from("PK\x03\x04archive/data.pkl", "latin1"));
  throwsWeights(() => SafetensorsFile.open(file), /not loaded, because unpickling can execute arbitrary code/);
});

test("a missing file names the file", () => {
  throwsWeights(() => SafetensorsFile.open(path.join(dir, "nope.safetensors")), /nope\.safetensors: cannot open \(ENOENT\)/);
});
