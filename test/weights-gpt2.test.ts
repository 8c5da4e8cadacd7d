// Loading and saving Hugging Face GPT-2 folders (config.json + model.safetensors):
// the name map, the c_attn split, the tied or separate head, dtypes, the round trip,
// and one-line errors naming the file and the tensor for every bad folder.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import { WeightsError } from "../lib/core/errors";
import { GPTModel } from "../lib/model/gpt";
import { SafetensorsFile, readSafetensors } from "../lib/weights/safetensors-read";
import { CONFIG_LIMITS, readGPT2Config } from "../lib/weights/config-file";
import { gpt2Layout, gpt2WeightCount } from "../lib/weights/gpt2-names";
import { GPT2_SMALL, GPT2_XL } from "../lib/model/config";
import { loadGPT2Directory, saveGPT2Directory } from "../lib/weights/gpt2-directory";
import { HFTensor, TINY_HF_CONFIG, makeHFTensors, readRawHeader, tempDir, writeHFDir } from "./helpers/hf-checkpoint";

const root = tempDir("weights");
let n = 0;
const fresh = () => path.join(root, `d${n++}`);
before(async () => {
  await initEngine({ log: () => {} });
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

/** Logits for a fixed (2, 7) batch that uses every position and most token ids. */
async function logits(model: GPTModel): Promise<number[]> {
  const ids = tf.tensor2d([[1, 5, 10, 0, 3, 7, 2], [4, 4, 9, 8, 6, 1, 0]], [2, 7], "int32");
  const out = model.forward(ids);
  const values = Array.from(await out.data());
  tf.dispose([ids, out]);
  return values;
}

async function load(dir: string): Promise<{ model: GPTModel; logits: number[] }> {
  const model = await loadGPT2Directory(dir);
  return { model, logits: await logits(model) };
}

const value = (model: GPTModel, name: string) => Array.from(model.param(name).dataSync());

/** Rows [r0, r1) and columns [c0, c1) of a row-major (rows, cols) array. */
function block(t: HFTensor, c0: number, c1: number): number[] {
  const [rows, cols] = t.shape.length === 2 ? t.shape : [1, t.shape[0]];
  const out: number[] = [];
  for (let r = 0; r < rows; r++) for (let c = c0; c < c1; c++) out.push(t.data[r * cols + c]);
  return out;
}

function transposed(t: HFTensor): number[] {
  const [rows, cols] = t.shape;
  const out: number[] = [];
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out.push(t.data[r * cols + c]);
  return out;
}

async function rejects(dir: string, ...patterns: RegExp[]): Promise<string> {
  const err = await loadGPT2Directory(dir).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof WeightsError, `expected a WeightsError, got ${String(err)}`);
  const msg = (err as Error).message;
  assert.ok(!msg.includes("\n"), `message is not one line: ${msg}`);
  for (const p of patterns) assert.match(msg, p);
  return msg;
}

test("config.json becomes the library's config", () => {
  const dir = writeHFDir(fresh(), makeHFTensors());
  assert.deepEqual(readGPT2Config(dir), {
    vocabSize: 11, contextLength: 7, embDim: 6, nHeads: 2, nLayers: 2, dropRate: 0, qkvBias: true,
  });
  // older files give the context as n_ctx only
  const { n_positions, ...rest } = TINY_HF_CONFIG;
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...rest, n_ctx: n_positions }));
  assert.equal(readGPT2Config(dir).contextLength, 7);
});

test("each checkpoint tensor lands in its library parameter: Conv1D as is, c_attn split q|k|v, head = wte transposed", async () => {
  const hf = makeHFTensors(TINY_HF_CONFIG, { buffers: true });
  const model = await loadGPT2Directory(writeHFDir(fresh(), hf));
  const C = 6;
  const get = (name: string) => hf.get(name)!;
  assert.deepEqual(value(model, "tokEmb.weight"), Array.from(get("wte.weight").data));
  assert.deepEqual(value(model, "posEmb.weight"), Array.from(get("wpe.weight").data));
  assert.deepEqual(value(model, "blocks.1.att.wQuery.weight"), block(get("h.1.attn.c_attn.weight"), 0, C));
  assert.deepEqual(value(model, "blocks.1.att.wKey.weight"), block(get("h.1.attn.c_attn.weight"), C, 2 * C));
  assert.deepEqual(value(model, "blocks.1.att.wValue.weight"), block(get("h.1.attn.c_attn.weight"), 2 * C, 3 * C));
  assert.deepEqual(value(model, "blocks.1.att.wValue.bias"), block(get("h.1.attn.c_attn.bias"), 2 * C, 3 * C));
  assert.deepEqual(value(model, "blocks.0.ff.fc1.weight"), Array.from(get("h.0.mlp.c_fc.weight").data));
  assert.deepEqual(value(model, "blocks.0.ff.fc2.weight"), Array.from(get("h.0.mlp.c_proj.weight").data));
  assert.deepEqual(value(model, "blocks.0.norm2.shift"), Array.from(get("h.0.ln_2.bias").data));
  assert.deepEqual(value(model, "finalNorm.scale"), Array.from(get("ln_f.weight").data));
  assert.deepEqual(model.param("outHead.weight").shape, [6, 11]);
  assert.deepEqual(value(model, "outHead.weight"), transposed(get("wte.weight")));
  model.dispose();
});

test("names with and without the transformer. prefix load the same model", async () => {
  const hf = makeHFTensors(TINY_HF_CONFIG, { lmHead: true });
  const plain = await load(writeHFDir(fresh(), hf));
  const prefixed = await load(writeHFDir(fresh(), hf, { prefix: true }));
  assert.deepEqual(prefixed.logits, plain.logits);
  plain.model.dispose();
  prefixed.model.dispose();
});

test("a separate lm_head.weight becomes the head (transposed); without one the head is tied to wte", async () => {
  const withHead = makeHFTensors(TINY_HF_CONFIG, { lmHead: true });
  const separate = await load(writeHFDir(fresh(), withHead));
  assert.deepEqual(value(separate.model, "outHead.weight"), transposed(withHead.get("lm_head.weight")!));
  const tiedTensors = new Map(withHead);
  tiedTensors.delete("lm_head.weight");
  const tied = await load(writeHFDir(fresh(), tiedTensors));
  assert.notDeepEqual(separate.logits, tied.logits);
  separate.model.dispose();
  tied.model.dispose();
});

test("F16 and BF16 checkpoints load to the same model as F32 (values exact in all three)", async () => {
  const hf = makeHFTensors();
  const f32 = await load(writeHFDir(fresh(), hf, { dtype: "F32" }));
  for (const dtype of ["F16", "BF16"] as const) {
    const other = await load(writeHFDir(fresh(), hf, { dtype }));
    assert.deepEqual(other.logits, f32.logits, dtype);
    other.model.dispose();
  }
  f32.model.dispose();
});

test("save then load gives identical logits, tied or trained-apart head; the files use HF's layout", async () => {
  const cfg = readGPT2Config(writeHFDir(fresh(), makeHFTensors()));
  const model = new GPTModel(cfg, { seed: 42 });
  // a freshly built model has its own head; make a tied one too, as pretrained GPT-2 is
  const tiedModel = new GPTModel(cfg, { seed: 43 });
  tiedModel.param("outHead.weight").assign(tiedModel.param("tokEmb.weight").transpose());
  for (const [m, tied] of [[model, false], [tiedModel, true]] as const) {
    const dir = fresh();
    await saveGPT2Directory(m, dir);
    const back = await load(dir);
    assert.deepEqual(back.logits, await logits(m));
    const st = SafetensorsFile.open(path.join(dir, "model.safetensors"));
    const names = st.names();
    st.close();
    assert.equal(names.includes("lm_head.weight"), !tied);
    assert.ok(names.includes("transformer.h.1.attn.c_attn.weight"));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
    assert.equal(config.tie_word_embeddings, tied);
    assert.equal(config.n_embd, 6);
    assert.equal(config.model_type, "gpt2");
    back.model.dispose();
    m.dispose();
  }
});

test("a saved folder holds exactly the HF tensors: c_attn is q|k|v fused, Conv1D layout", async () => {
  const hf = makeHFTensors(TINY_HF_CONFIG, { lmHead: true });
  const model = await loadGPT2Directory(writeHFDir(fresh(), hf));
  const dir = fresh();
  await saveGPT2Directory(model, dir);
  const saved = readSafetensors(path.join(dir, "model.safetensors"));
  assert.equal(saved.size, hf.size);
  for (const [name, t] of hf) {
    const key = name === "lm_head.weight" ? name : `transformer.${name}`;
    assert.deepEqual(saved.get(key)?.shape, t.shape, key);
    assert.deepEqual(Array.from(saved.get(key)!.data), Array.from(t.data), key);
  }
  assert.deepEqual(readRawHeader(path.join(dir, "model.safetensors")).__metadata__, { format: "pt" }); // transformers needs it
  model.dispose();
});

test("loading and disposing leaves no tensors behind", async () => {
  const dir = writeHFDir(fresh(), makeHFTensors());
  const start = tf.memory().numTensors;
  const model = await loadGPT2Directory(dir);
  assert.equal(tf.memory().numTensors - start, model.params.size);
  model.dispose();
  assert.equal(tf.memory().numTensors, start);
});

// ---- bad folders: each gives one line naming the file and the tensor or key ----

test("missing config.json, malformed config.json, missing or bad keys", async () => {
  const dir = writeHFDir(fresh(), makeHFTensors());
  const cfgFile = path.join(dir, "config.json");
  fs.rmSync(cfgFile);
  await rejects(dir, /config\.json: not found/);
  fs.writeFileSync(cfgFile, "{ n_embd: 6 ");
  await rejects(dir, /config\.json: malformed JSON/);
  const { n_embd, ...noEmbd } = TINY_HF_CONFIG;
  fs.writeFileSync(cfgFile, JSON.stringify(noEmbd));
  await rejects(dir, /config\.json: key "n_embd" is missing/);
  const { n_positions, ...noCtx } = TINY_HF_CONFIG;
  fs.writeFileSync(cfgFile, JSON.stringify(noCtx));
  await rejects(dir, /config\.json: key "n_positions" is missing \(or "n_ctx"\)/);
  fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, n_head: "2" }));
  await rejects(dir, /config\.json: key "n_head" must be a positive integer, got "2"/);
  fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, n_head: 4 }));
  await rejects(dir, /config\.json: key "n_embd" \(6\) is not divisible by "n_head" \(4\)/);
  fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, activation_function: "relu" }));
  await rejects(dir, /config\.json: key "activation_function" is "relu"/);
});

test("config.json sizes past the limits, or implying more weights than model.safetensors holds, are refused before anything is built", async () => {
  const dir = writeHFDir(fresh(), makeHFTensors());
  const cfgFile = path.join(dir, "config.json");
  const start = tf.memory().numTensors;
  for (const [key, limit] of Object.entries(CONFIG_LIMITS)) {
    fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, [key]: limit + 1 }));
    await rejects(dir, new RegExp(`config\\.json: key "${key}" is ${limit + 1}, beyond the limit of ${limit}`));
  }
  // within every limit, but 4 layers of C = 6144 need about 3.6 GB, and the file has 4 KB
  fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, n_embd: 6144, n_head: 2, n_layer: 4 }));
  await rejects(dir, /model\.safetensors: \d+ bytes cannot hold the 1812\d+ weights that .*config\.json implies \(keys "vocab_size" 11, "n_positions" 7, "n_embd" 6144, "n_layer" 4; at least \d+ bytes\)/);
  for (const [key, value] of [["resid_pdrop", 1], ["attn_pdrop", "0.1"], ["layer_norm_epsilon", 1e-6]] as const) {
    fs.writeFileSync(cfgFile, JSON.stringify({ ...TINY_HF_CONFIG, [key]: value }));
    await rejects(dir, new RegExp(`config\\.json: key "${key}" `));
  }
  assert.equal(tf.memory().numTensors, start);
});

test("the weight count config.json implies is the layout's, without lm_head", () => {
  for (const cfg of [readGPT2Config(writeHFDir(fresh(), makeHFTensors())), GPT2_SMALL, GPT2_XL]) {
    const layout = gpt2Layout(cfg).filter((m) => m.hf !== "lm_head.weight");
    assert.equal(gpt2WeightCount(cfg), layout.reduce((s, m) => s + m.shape.reduce((a, b) => a * b, 1), 0));
  }
  assert.equal(gpt2WeightCount(GPT2_SMALL), 124_439_808); // GPT-2 small's 124M, the head tied
});

test("a shape that disagrees with config.json names the tensor and both shapes", async () => {
  const hf = makeHFTensors();
  const dir = writeHFDir(fresh(), hf, { config: { ...TINY_HF_CONFIG, n_positions: 8 } });
  await rejects(dir, /model\.safetensors: tensor "wpe\.weight" has shape \[7, 6\], but config\.json implies \[8, 6\]/);
  // a c_attn saved the nn.Linear way, (3C, C), is caught too
  const c = hf.get("h.0.attn.c_attn.weight")!;
  hf.set("h.0.attn.c_attn.weight", { shape: [18, 6], data: c.data });
  await rejects(writeHFDir(fresh(), hf, { prefix: true }),
    /tensor "transformer\.h\.0\.attn\.c_attn\.weight" has shape \[18, 6\], but config\.json implies \[6, 18\]/);
});

test("a missing tensor and an unexpected extra tensor are named", async () => {
  const hf = makeHFTensors();
  hf.delete("h.1.mlp.c_fc.bias");
  await rejects(writeHFDir(fresh(), hf), /model\.safetensors: missing tensor "h\.1\.mlp\.c_fc\.bias"/);
  const extra = makeHFTensors();
  extra.set("h.0.attn.rotary.weight", { shape: [2], data: Float32Array.of(1, 2) });
  await rejects(writeHFDir(fresh(), extra), /model\.safetensors: unexpected tensor "h\.0\.attn\.rotary\.weight"/);
  // a checkpoint with more layers than config.json says
  const deeper = makeHFTensors({ ...TINY_HF_CONFIG, n_layer: 3 });
  await rejects(writeHFDir(fresh(), deeper), /unexpected tensor "h\.2\.ln_1\.weight": not part of GPT-2 with the sizes in config\.json \(n_layer 2\)/);
});

test("NaN in a weight is refused, naming the file and the tensor", async () => {
  const hf = makeHFTensors();
  hf.get("h.0.ln_2.weight")!.data[3] = NaN;
  await rejects(writeHFDir(fresh(), hf), /model\.safetensors: tensor "h\.0\.ln_2\.weight" contains NaN \(at flat index 3\)/);
});

test("a truncated model.safetensors is refused before any model is built", async () => {
  const dir = writeHFDir(fresh(), makeHFTensors());
  const file = path.join(dir, "model.safetensors");
  const full = fs.readFileSync(file);
  fs.writeFileSync(file, full.subarray(0, full.length - 100));
  const start = tf.memory().numTensors;
  await rejects(dir, /model\.safetensors: tensor "h\.1\.mlp\.c_proj\.weight": data_offsets \[3912, 4488\] go past the end: the file is truncated \(the header describes 4560 data bytes, the file has 4460\); download it again/);
  assert.equal(tf.memory().numTensors, start);
});

test("pickle checkpoints are refused with the reason and how to convert, never opened", async () => {
  const dir = fresh();
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(TINY_HF_CONFIG));
  // a pickle that would run `os.system` if it were unpickled
  fs.writeFileSync(path.join(dir, "pytorch_model.bin"), Buffer.from("\x80\x02cos\nsystem\n(S'touch pwned'\ntR.", "latin1"));
  await rejects(dir, /pytorch_model\.bin: PyTorch pickle checkpoints .* are not loaded, because unpickling can execute arbitrary code/,
    /safetensors\.torch import save_file/);
  const pth = path.join(dir, "gpt2-medium355M-sft.pth");
  fs.renameSync(path.join(dir, "pytorch_model.bin"), pth);
  await rejects(dir, /gpt2-medium355M-sft\.pth: PyTorch pickle checkpoints/);
  await rejects(pth, /gpt2-medium355M-sft\.pth: PyTorch pickle checkpoints/);
  assert.ok(!fs.existsSync(path.join(dir, "pwned")) && !fs.existsSync("pwned"));
  // with neither file, say what a folder should hold
  fs.rmSync(pth);
  await rejects(dir, /model\.safetensors: not found \(a Hugging Face GPT-2 folder holds config\.json and model\.safetensors\)/);
});
