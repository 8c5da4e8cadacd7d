/**
 * Loading and saving GPT-2 in the Hugging Face layout: a folder with `config.json`
 * and `model.safetensors`, as on huggingface.co/openai-community/gpt2. This plays the
 * part of the book's `load_weights_into_gpt` (chapter 5), which copies OpenAI's
 * TensorFlow checkpoint into the book's `GPTModel` one array at a time.
 *
 * The checkpoint's names and where they go are in gpt2-names.ts, config.json in
 * config-file.ts; this file moves the values.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { WeightsError } from "../core/errors";
import { GPTConfig } from "../model/config";
import { GPTModel } from "../model/gpt";
import { CONFIG_FILE, readGPT2Config, writeGPT2Config } from "./config-file";
import { HF_PREFIX, LM_HEAD, MASK_BUFFER, MappedTensor, TOKEN_EMBEDDING, gpt2Layout, gpt2WeightCount } from "./gpt2-names";
import { PICKLE_FILE, pickleRefusal } from "./pickle";
import { FLOAT_DTYPES, fmtShape, quoted } from "./safetensors-format";
import { SafetensorsFile } from "./safetensors-read";
import { TensorToWrite, writeSafetensors } from "./safetensors-write";

export const WEIGHTS_FILE = "model.safetensors";
/** The narrowest dtype a GPT-2 file may hold (F16, BF16): what config.json's sizes must fit in. */
const MIN_BYTES_PER_WEIGHT = 2;

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
  /** dropout for fine-tuning; default 0.0 as in the book's chapter 7 (not the file's *_pdrop) */
  dropRate?: number;
  /** seeds the dropout masks (default: GPTModel's) */
  seed?: number;
  /** called after each tensor with bytes read so far and the total, for a progress bar */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/**
 * Builds a `GPTModel` from a Hugging Face GPT-2 folder (`config.json` + `model.safetensors`).
 * The weights config.json implies are checked against the file's size, and every name,
 * shape and dtype against config.json, before the model is built or a value is read; any
 * problem is a one-line `WeightsError` naming the file and the key or tensor.
 */
export async function loadGPT2Directory(dir: string, opts: GPT2LoadOptions = {}): Promise<GPTModel> {
  refusePickles(dir);
  const cfg = readGPT2Config(dir, opts);
  const file = path.join(dir, WEIGHTS_FILE);
  checkImpliedSize(dir, file, cfg);
  const layout = gpt2Layout(cfg);
  const st = SafetensorsFile.open(file);
  const f = st.file;
  let model: GPTModel | null = null;
  try {
    // checkpoint name without the prefix -> name in the file
    const names = new Map<string, string>();
    for (const name of st.tensors.keys()) {
      const bare = name.startsWith(HF_PREFIX) ? name.slice(HF_PREFIX.length) : name;
      if (names.has(bare)) throw new WeightsError(`${f}: tensor ${quoted(bare)} appears twice (with and without "${HF_PREFIX}")`);
      names.set(bare, name);
    }
    const known = new Set(layout.map((m) => m.hf));
    const entries = layout.filter((m) => m.hf !== LM_HEAD || names.has(m.hf)); // no lm_head: tied to wte
    for (const m of entries) {
      const name = names.get(m.hf);
      if (name === undefined) throw new WeightsError(`${f}: missing tensor ${quoted(m.hf)} (config.json has n_layer ${cfg.nLayers})`);
      const { shape, dtype } = st.info(name);
      if (fmtShape(shape) !== fmtShape(m.shape)) {
        throw new WeightsError(`${f}: tensor ${quoted(name)} has shape ${fmtShape(shape)}, but config.json implies ${fmtShape(m.shape)}`);
      }
      if (!(FLOAT_DTYPES as readonly string[]).includes(dtype)) {
        throw new WeightsError(`${f}: tensor ${quoted(name)} has dtype ${dtype}, which is not supported (supported: ${FLOAT_DTYPES.join(", ")})`);
      }
    }
    for (const [bare, name] of names) {
      if (!known.has(bare) && !MASK_BUFFER.test(bare)) {
        throw new WeightsError(`${f}: unexpected tensor ${quoted(name)}: not part of GPT-2 with the sizes in config.json (n_layer ${cfg.nLayers})`);
      }
    }

    model = new GPTModel(cfg, { seed: opts.seed, init: "zeros" });
    const bytes = (m: MappedTensor) => st.info(names.get(m.hf)!).end - st.info(names.get(m.hf)!).begin;
    const total = entries.reduce((s, m) => s + bytes(m), 0);
    let done = 0;
    let wte: Float32Array | null = null;
    for (const m of entries) {
      const data = st.readFloat32(names.get(m.hf)!);
      if (m.hf === TOKEN_EMBEDDING) wte = data;
      placeTensor(model, m, data);
      done += bytes(m);
      opts.onProgress?.(done, total);
    }
    if (!names.has(LM_HEAD)) {
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

/**
 * The weights config.json's sizes imply, at 2 bytes each at least, must fit in model.safetensors:
 * checked before the model is built, so a config that asks for more memory than the file could
 * fill is refused without allocating it.
 */
function checkImpliedSize(dir: string, file: string, cfg: GPTConfig): void {
  let size: number;
  try {
    size = fs.statSync(file).size;
  } catch (err) {
    throw new WeightsError(`${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const weights = gpt2WeightCount(cfg);
  if (weights * MIN_BYTES_PER_WEIGHT > size) {
    throw new WeightsError(
      `${file}: ${size} bytes cannot hold the ${weights} weights that ${path.join(dir, CONFIG_FILE)} implies ` +
        `(keys "vocab_size" ${cfg.vocabSize}, "n_positions" ${cfg.contextLength}, "n_embd" ${cfg.embDim}, "n_layer" ${cfg.nLayers}; ` +
        `at least ${weights * MIN_BYTES_PER_WEIGHT} bytes): truncated, or config.json does not belong to it`,
    );
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
  model.setValues(name, data); // a table split into vocabulary blocks too (lib/model/vocab-table.ts)
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
 * Both files are written atomically; config.json carries the model's drop rate.
 *
 * A model with a LoRA adapter is saved merged (W + (alpha/r) · A @ B: what it computes), a plain
 * GPT-2 that loads anywhere; `{ lora: "base" }` writes the frozen base weights instead (a checkpoint
 * keeps the adapter apart, lib/weights/lora-adapter.ts).
 * The parameters are read first, with `await data()` (the one way that works on every engine,
 * GPUs included): while saving, host memory holds one copy of the weights.
 */
export async function saveGPT2Directory(model: GPTModel, dir: string, opts: { lora?: "merge" | "base" } = {}): Promise<void> {
  const cfg = model.cfg;
  fs.mkdirSync(dir, { recursive: true });
  const merge = (opts.lora ?? "merge") === "merge";
  // every parameter read first, with `await data()`; with LoRA merged, each wrapped weight as W + (alpha/r)·A@B
  const read = new Map<string, Float32Array>();
  for (const name of model.paramNames()) read.set(name, merge ? await model.mergedValues(name) : await model.values(name));
  const values = (name: string) => read.get(name) as Float32Array;
  const tied = isTied(values("tokEmb.weight"), values("outHead.weight"), cfg.vocabSize, cfg.embDim);
  const tensors = new Map<string, TensorToWrite>();
  for (const m of gpt2Layout(cfg)) {
    if (m.hf === LM_HEAD && tied) continue;
    // the library's body is transformers' `transformer.*`; its lm_head sits outside it
    const name = m.hf === LM_HEAD ? m.hf : HF_PREFIX + m.hf;
    tensors.set(name, { shape: m.shape, data: () => gatherTensor(model, values, m) });
  }
  // transformers refuses safetensors files without a "format" in the metadata
  writeSafetensors(path.join(dir, WEIGHTS_FILE), tensors, { format: "pt" });
  writeGPT2Config(dir, cfg, tied);
}

/** The inverse of `placeTensor`: one checkpoint tensor's values from the library parameter(s). */
function gatherTensor(model: GPTModel, values: (name: string) => Float32Array, m: MappedTensor): Float32Array {
  if (m.how === "copy") return values(m.lib[0]);
  if (m.how === "transpose") {
    const [V, C] = m.shape;
    return transpose2d(values(m.lib[0]), C, V); // (C, V) -> (V, C)
  }
  // fuse q, k, v (rows, C) into (rows, 3C); a model without qkv bias writes zeros
  const width = m.shape[m.shape.length - 1];
  const C = width / 3;
  const rows = m.shape.length === 2 ? m.shape[0] : 1;
  const out = new Float32Array(rows * width);
  m.lib.forEach((lib, k) => {
    if (!model.paramNames().includes(lib)) return;
    const part = values(lib);
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
