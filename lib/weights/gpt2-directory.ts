/**
 * Loading and saving GPT-2 in the Hugging Face layout: a folder with `config.json`
 * and `model.safetensors`, as on huggingface.co/openai-community/gpt2. This plays the
 * part of the book's `load_weights_into_gpt` (chapter 5), which copies OpenAI's
 * TensorFlow checkpoint into the book's `GPTModel` one array at a time.
 *
 * This file is the one place that knows the checkpoint's names (`wte`, `h.0.attn.c_attn`,
 * `ln_f`…): `gpt2Layout` maps each of them to the library's parameter names.
 *
 * Two details of the checkpoint shape the code:
 * - GPT-2 uses `Conv1D` layers, whose weights are stored (in, out), the library's own
 *   layout for `Linear`, so they are copied as they are (no transpose, unlike `nn.Linear`).
 * - Query, key and value are one fused `c_attn` matrix (C, 3C); the book's model has three
 *   (C, C) matrices, so it is split column-wise in that order.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { END_OF_TEXT } from "../data/tokenizer";
import { WeightsError } from "../core/errors";
import { GPTConfig } from "../model/config";
import { GPTModel } from "../model/gpt";
import { SafetensorsFile, TensorToWrite, fmtShape, pickleRefusal, writeSafetensors } from "./safetensors";

export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";
/** transformers' `GPT2LMHeadModel` saves its body under this prefix; OpenAI's conversion does not. */
const HF_PREFIX = "transformer.";
/** The causal-mask buffers some GPT-2 files carry: constants, not weights, so they are skipped. */
const MASK_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;
/** File names that mean a PyTorch pickle, which is refused rather than unpickled. */
const PICKLE_FILE = /(^pytorch_model.*\.bin$)|(\.(pth|pt|ckpt)$)/;

/** One checkpoint tensor: its name (without "transformer."), shape, and where it goes. */
export interface MappedTensor {
  hf: string;
  /** shape in the checkpoint, as config.json implies */
  shape: number[];
  /** the library parameter(s) it fills: three for the fused query/key/value */
  lib: string[];
  /** copy as is; split (…, 3C) into q, k, v along the last axis; or transpose (V, C) -> (C, V) */
  how: "copy" | "splitQKV" | "transpose";
}

/** Checkpoint name -> library name, for every GPT-2 tensor (lm_head.weight last, optional). */
export function gpt2Layout(cfg: GPTConfig): MappedTensor[] {
  const { vocabSize: V, contextLength: T, embDim: C } = cfg;
  const map: MappedTensor[] = [
    { hf: "wte.weight", shape: [V, C], lib: ["tokEmb.weight"], how: "copy" },
    { hf: "wpe.weight", shape: [T, C], lib: ["posEmb.weight"], how: "copy" },
  ];
  const qkv = (b: string, kind: string) => ["wQuery", "wKey", "wValue"].map((w) => `${b}.att.${w}.${kind}`);
  for (let i = 0; i < cfg.nLayers; i++) {
    const h = `h.${i}`;
    const b = `blocks.${i}`;
    map.push(
      { hf: `${h}.ln_1.weight`, shape: [C], lib: [`${b}.norm1.scale`], how: "copy" },
      { hf: `${h}.ln_1.bias`, shape: [C], lib: [`${b}.norm1.shift`], how: "copy" },
      { hf: `${h}.attn.c_attn.weight`, shape: [C, 3 * C], lib: qkv(b, "weight"), how: "splitQKV" },
      { hf: `${h}.attn.c_attn.bias`, shape: [3 * C], lib: qkv(b, "bias"), how: "splitQKV" },
      { hf: `${h}.attn.c_proj.weight`, shape: [C, C], lib: [`${b}.att.outProj.weight`], how: "copy" },
      { hf: `${h}.attn.c_proj.bias`, shape: [C], lib: [`${b}.att.outProj.bias`], how: "copy" },
      { hf: `${h}.ln_2.weight`, shape: [C], lib: [`${b}.norm2.scale`], how: "copy" },
      { hf: `${h}.ln_2.bias`, shape: [C], lib: [`${b}.norm2.shift`], how: "copy" },
      { hf: `${h}.mlp.c_fc.weight`, shape: [C, 4 * C], lib: [`${b}.ff.fc1.weight`], how: "copy" },
      { hf: `${h}.mlp.c_fc.bias`, shape: [4 * C], lib: [`${b}.ff.fc1.bias`], how: "copy" },
      { hf: `${h}.mlp.c_proj.weight`, shape: [4 * C, C], lib: [`${b}.ff.fc2.weight`], how: "copy" },
      { hf: `${h}.mlp.c_proj.bias`, shape: [C], lib: [`${b}.ff.fc2.bias`], how: "copy" },
    );
  }
  map.push(
    { hf: "ln_f.weight", shape: [C], lib: ["finalNorm.scale"], how: "copy" },
    { hf: "ln_f.bias", shape: [C], lib: ["finalNorm.shift"], how: "copy" },
    // nn.Linear stores (out, in) = (V, C); the library's head is (in, out) = (C, V)
    { hf: "lm_head.weight", shape: [V, C], lib: ["outHead.weight"], how: "transpose" },
  );
  return map;
}

/** Reads a GPT-2 `config.json` into the library's config. */
export function readGPT2Config(dir: string, opts: { dropRate?: number } = {}): GPTConfig {
  const file = path.join(dir, CONFIG_FILE);
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new WeightsError(`${file}: not found (a Hugging Face GPT-2 folder holds config.json and model.safetensors)`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new WeightsError(`${file}: malformed JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new WeightsError(`${file}: expected a JSON object`);
  const json = raw as Record<string, unknown>;
  const int = (...keys: string[]): number => {
    const key = keys.find((k) => json[k] !== undefined && json[k] !== null);
    if (key === undefined) throw new WeightsError(`${file}: key "${keys[0]}" is missing${keys.length > 1 ? ` (or "${keys.slice(1).join('", "')}")` : ""}`);
    const v = json[key];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new WeightsError(`${file}: key "${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
    return v;
  };
  const cfg: GPTConfig = {
    vocabSize: int("vocab_size"),
    contextLength: int("n_positions", "n_ctx"),
    embDim: int("n_embd"),
    nHeads: int("n_head"),
    nLayers: int("n_layer"),
    dropRate: opts.dropRate ?? 0.0,
    qkvBias: true, // GPT-2's c_attn always has a bias
  };
  if (cfg.embDim % cfg.nHeads !== 0) throw new WeightsError(`${file}: key "n_embd" (${cfg.embDim}) is not divisible by "n_head" (${cfg.nHeads})`);
  // the library's blocks are GPT-2's: 4C feed-forward, GELU with the tanh approximation
  if (json.n_inner !== undefined && json.n_inner !== null && json.n_inner !== 4 * cfg.embDim) {
    throw new WeightsError(`${file}: key "n_inner" is ${JSON.stringify(json.n_inner)}; this model supports only 4 * n_embd (${4 * cfg.embDim})`);
  }
  const act = json.activation_function;
  if (act !== undefined && act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
    throw new WeightsError(`${file}: key "activation_function" is ${JSON.stringify(act)}; this model supports only "gelu_new" (GELU, tanh approximation)`);
  }
  return cfg;
}

/** Throws the pickle refusal if `dir` is, or holds instead of model.safetensors, a pickle checkpoint. */
function refusePickles(dir: string): void {
  if (fs.existsSync(dir) && fs.statSync(dir).isFile()) {
    if (PICKLE_FILE.test(path.basename(dir)) || dir.endsWith(".bin")) throw new WeightsError(pickleRefusal(dir));
    throw new WeightsError(`${dir}: expected a folder holding config.json and model.safetensors, not a file`);
  }
  if (!fs.existsSync(dir)) throw new WeightsError(`${dir}: folder not found`);
  if (fs.existsSync(path.join(dir, WEIGHTS_FILE))) return;
  const pickle = fs.readdirSync(dir).find((f) => PICKLE_FILE.test(f));
  if (pickle) throw new WeightsError(pickleRefusal(path.join(dir, pickle)));
  throw new WeightsError(`${path.join(dir, WEIGHTS_FILE)}: not found (a Hugging Face GPT-2 folder holds config.json and model.safetensors)`);
}

export interface GPT2LoadOptions {
  /** dropout for fine-tuning; default 0.0 as in the book's chapter 7 */
  dropRate?: number;
  /** seeds the dropout masks (default: GPTModel's) */
  seed?: number;
  /** called after each tensor with bytes read so far and the total, for a progress bar */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/**
 * Builds a `GPTModel` from a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`).
 * Every name and shape is checked against config.json before a value is read; any problem
 * is a one-line `WeightsError` naming the file and the tensor.
 */
export async function loadGPT2Directory(dir: string, opts: GPT2LoadOptions = {}): Promise<GPTModel> {
  refusePickles(dir);
  const cfg = readGPT2Config(dir, opts);
  const st = SafetensorsFile.open(path.join(dir, WEIGHTS_FILE));
  const f = st.file;
  let model: GPTModel | null = null;
  try {
    // checkpoint name without the prefix -> name in the file
    const names = new Map<string, string>();
    for (const name of st.tensors.keys()) {
      const bare = name.startsWith(HF_PREFIX) ? name.slice(HF_PREFIX.length) : name;
      if (names.has(bare)) throw new WeightsError(`${f}: tensor "${bare}" appears twice (with and without "${HF_PREFIX}")`);
      names.set(bare, name);
    }
    const layout = gpt2Layout(cfg);
    const known = new Set(layout.map((m) => m.hf));
    const entries = layout.filter((m) => m.hf !== "lm_head.weight" || names.has(m.hf)); // no lm_head: tied to wte
    for (const m of entries) {
      const name = names.get(m.hf);
      if (name === undefined) throw new WeightsError(`${f}: missing tensor "${m.hf}" (config.json has n_layer ${cfg.nLayers})`);
      const found = st.info(name).shape;
      if (fmtShape(found) !== fmtShape(m.shape)) {
        throw new WeightsError(`${f}: tensor "${name}" has shape ${fmtShape(found)}, but config.json implies ${fmtShape(m.shape)}`);
      }
    }
    for (const [bare, name] of names) {
      if (!known.has(bare) && !MASK_BUFFER.test(bare)) {
        throw new WeightsError(`${f}: unexpected tensor "${name}": not part of GPT-2 with the sizes in config.json (n_layer ${cfg.nLayers})`);
      }
    }

    model = new GPTModel(cfg, { seed: opts.seed, init: "zeros" });
    const total = entries.reduce((s, m) => s + st.info(names.get(m.hf)!).end - st.info(names.get(m.hf)!).begin, 0);
    let done = 0;
    let wte: Float32Array | null = null;
    for (const m of entries) {
      const name = names.get(m.hf)!;
      const data = st.readFloat32(name);
      if (m.hf === "wte.weight") wte = data;
      placeTensor(model, m, data);
      done += st.info(name).end - st.info(name).begin;
      opts.onProgress?.(done, total);
    }
    if (!names.has("lm_head.weight")) {
      // weight tying: GPT-2's output head is the token embedding, transposed
      placeTensor(model, layout[layout.length - 1], wte!);
    }
    return model;
  } catch (err) {
    model?.dispose();
    throw err;
  } finally {
    st.close();
  }
}

/** Puts one checkpoint tensor's values into the library parameter(s) it maps to. */
function placeTensor(model: GPTModel, m: MappedTensor, data: Float32Array): void {
  if (m.how === "copy") return assign(model, m.lib[0], data);
  if (m.how === "transpose") {
    const [V, C] = m.shape;
    return assign(model, m.lib[0], transpose2d(data, V, C)); // (V, C) -> (C, V)
  }
  // splitQKV: (rows, 3C) -> three (rows, C), query first, as GPT-2's attention splits it
  const width = m.shape[m.shape.length - 1];
  const C = width / 3;
  const rows = data.length / width;
  m.lib.forEach((lib, k) => {
    const part = new Float32Array(rows * C);
    for (let r = 0; r < rows; r++) part.set(data.subarray(r * width + k * C, r * width + (k + 1) * C), r * C);
    assign(model, lib, part);
  });
}

function assign(model: GPTModel, name: string, data: Float32Array): void {
  const v = model.param(name);
  const t = tf.tensor(data, v.shape, "float32");
  v.assign(t);
  t.dispose();
}

/** (rows, cols) row-major -> (cols, rows) row-major */
function transpose2d(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let r = 0; r < rows; r++) {
    const row = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = data[row + c];
  }
  return out;
}

/**
 * Saves a model as a Hugging Face GPT-2 folder that loads here and in transformers
 * (`GPT2LMHeadModel.from_pretrained(dir)`): Conv1D (in, out) weights, c_attn fused,
 * and `lm_head.weight` only when the head no longer equals wte transposed (then
 * config.json says `tie_word_embeddings: false`, so transformers keeps it apart).
 * Both files are written atomically.
 */
export async function saveGPT2Directory(model: GPTModel, dir: string): Promise<void> {
  const cfg = model.cfg;
  fs.mkdirSync(dir, { recursive: true });
  const values = (name: string) => model.param(name).dataSync() as Float32Array;
  const tied = isTied(values("tokEmb.weight"), values("outHead.weight"), cfg.vocabSize, cfg.embDim);
  const tensors = new Map<string, TensorToWrite>();
  for (const m of gpt2Layout(cfg)) {
    if (m.hf === "lm_head.weight" && tied) continue;
    // the library's body is transformers' `transformer.*`; its lm_head sits outside it
    const name = m.hf === "lm_head.weight" ? m.hf : HF_PREFIX + m.hf;
    tensors.set(name, { shape: m.shape, data: () => gatherTensor(model, m) });
  }
  // transformers refuses safetensors files without a "format" in the metadata
  writeSafetensors(path.join(dir, WEIGHTS_FILE), tensors, { format: "pt" });
  writeFileAtomic(path.join(dir, CONFIG_FILE), (fd) => writeAll(fd, JSON.stringify(hfConfig(cfg, tied), null, 2) + "\n"));
}

/** The inverse of `placeTensor`: one checkpoint tensor's values from the library parameter(s). */
function gatherTensor(model: GPTModel, m: MappedTensor): Float32Array {
  if (m.how === "copy") return model.param(m.lib[0]).dataSync() as Float32Array;
  if (m.how === "transpose") {
    const [V, C] = m.shape;
    return transpose2d(model.param(m.lib[0]).dataSync() as Float32Array, C, V); // (C, V) -> (V, C)
  }
  // fuse q, k, v (rows, C) into (rows, 3C); a model without qkv bias writes zeros
  const width = m.shape[m.shape.length - 1];
  const C = width / 3;
  const rows = m.shape.length === 2 ? m.shape[0] : 1;
  const out = new Float32Array(rows * width);
  m.lib.forEach((lib, k) => {
    if (!model.params.has(lib)) return;
    const part = model.param(lib).dataSync() as Float32Array;
    for (let r = 0; r < rows; r++) out.set(part.subarray(r * C, (r + 1) * C), r * width + k * C);
  });
  return out;
}

/** True when head (C, V) is exactly wte (V, C) transposed, i.e. still GPT-2's tied head. */
function isTied(wte: Float32Array, head: Float32Array, V: number, C: number): boolean {
  for (let v = 0; v < V; v++) {
    for (let c = 0; c < C; c++) if (head[c * V + v] !== wte[v * C + c]) return false;
  }
  return true;
}

/** config.json as transformers writes it for GPT-2, with this model's sizes. */
function hfConfig(cfg: GPTConfig, tied: boolean): Record<string, unknown> {
  return {
    architectures: ["GPT2LMHeadModel"],
    model_type: "gpt2",
    vocab_size: cfg.vocabSize,
    n_positions: cfg.contextLength,
    n_ctx: cfg.contextLength,
    n_embd: cfg.embDim,
    n_layer: cfg.nLayers,
    n_head: cfg.nHeads,
    n_inner: null,
    activation_function: "gelu_new",
    layer_norm_epsilon: 1e-5,
    resid_pdrop: cfg.dropRate,
    embd_pdrop: cfg.dropRate,
    attn_pdrop: cfg.dropRate,
    tie_word_embeddings: tied,
    bos_token_id: END_OF_TEXT,
    eos_token_id: END_OF_TEXT,
  };
}
