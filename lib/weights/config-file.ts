/**
 * GPT-2's `config.json`, as transformers reads and writes it, to and from the library's
 * `GPTConfig`.
 *
 * Every number in it is hostile until checked: a size is a positive integer under a sane
 * limit (far above every GPT-2) before anything is sized by it, so a config.json saying
 * `n_layer: 1000000000` is a one-line `WeightsError`, not an out-of-memory abort. The loader
 * (gpt2-directory.ts) then checks the weights these sizes imply against model.safetensors.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { BOOK_DROP_RATE } from "../core/book";
import { WeightsError } from "../core/errors";
import { END_OF_TEXT } from "../data/tokenizer";
import { GPTConfig } from "../model/config";
import { LAYERNORM_EPS } from "../model/layernorm";

export const CONFIG_FILE = "config.json";

/**
 * Upper bounds for config.json's sizes. GPT-2 XL has V 50,257, T 1,024, C 1,600, 25 heads and
 * 48 layers; these leave room for any model this library could run, and keep every size
 * computed from them an exact integer (V * C and L * 12 * C^2 stay below 2^53).
 */
export const CONFIG_LIMITS = {
  vocab_size: 1 << 20,
  n_positions: 1 << 20,
  n_embd: 1 << 16,
  n_head: 1 << 10,
  n_layer: 1 << 10,
} as const;

/** transformers' three dropout probabilities; the library has one rate for all three. */
const PDROP_KEYS = ["resid_pdrop", "embd_pdrop", "attn_pdrop"] as const;

/** config.json parsed as a JSON object, or a one-line WeightsError naming the file. */
function readConfigJson(dir: string): { file: string; json: Record<string, unknown> } {
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
    throw new WeightsError(`${file}: malformed JSON (${(err as Error).message.split("\n")[0]})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new WeightsError(`${file}: expected a JSON object`);
  return { file, json: raw as Record<string, unknown> };
}

/**
 * Reads a GPT-2 `config.json` into the library's config. The drop rate is the caller's
 * (default the book's 0.0), not the file's: the Hub's GPT-2 files say 0.1, the rate of
 * pre-training, and chapter 7 fine-tunes without dropout.
 */
export function readGPT2Config(dir: string, opts: { dropRate?: number } = {}): GPTConfig {
  const { file, json } = readConfigJson(dir);
  const size = (key: keyof typeof CONFIG_LIMITS, alias?: string): number => {
    const found = [key, alias].find((k) => k !== undefined && json[k] !== undefined && json[k] !== null);
    if (found === undefined) throw new WeightsError(`${file}: key "${key}" is missing${alias ? ` (or "${alias}")` : ""}`);
    const v = json[found];
    if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) {
      throw new WeightsError(`${file}: key "${found}" must be a positive integer, got ${JSON.stringify(v)}`);
    }
    if (v > CONFIG_LIMITS[key]) {
      throw new WeightsError(`${file}: key "${found}" is ${v}, beyond the limit of ${CONFIG_LIMITS[key]}: not a usable GPT-2 config, or damaged`);
    }
    return v;
  };
  const cfg: GPTConfig = {
    vocabSize: size("vocab_size"),
    contextLength: size("n_positions", "n_ctx"),
    embDim: size("n_embd"),
    nHeads: size("n_head"),
    nLayers: size("n_layer"),
    dropRate: opts.dropRate ?? BOOK_DROP_RATE,
    qkvBias: true, // GPT-2's c_attn always has a bias
  };
  if (cfg.embDim % cfg.nHeads !== 0) throw new WeightsError(`${file}: key "n_embd" (${cfg.embDim}) is not divisible by "n_head" (${cfg.nHeads})`);
  // the library's blocks are GPT-2's: 4C feed-forward, GELU with the tanh approximation, LayerNorm eps 1e-5
  if (json.n_inner !== undefined && json.n_inner !== null && json.n_inner !== 4 * cfg.embDim) {
    throw new WeightsError(`${file}: key "n_inner" is ${JSON.stringify(json.n_inner)}; this model supports only 4 * n_embd (${4 * cfg.embDim})`);
  }
  const act = json.activation_function;
  if (act !== undefined && act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
    throw new WeightsError(`${file}: key "activation_function" is ${JSON.stringify(act)}; this model supports only "gelu_new" (GELU, tanh approximation)`);
  }
  const eps = json.layer_norm_epsilon;
  if (eps !== undefined && eps !== null && eps !== LAYERNORM_EPS) {
    throw new WeightsError(`${file}: key "layer_norm_epsilon" is ${JSON.stringify(eps)}; this model supports only ${LAYERNORM_EPS}`);
  }
  for (const key of PDROP_KEYS) dropProbability(file, json, key);
  return cfg;
}

/** `json[key]` when it is a dropout probability in [0, 1); null when absent; else a WeightsError. */
function dropProbability(file: string, json: Record<string, unknown>, key: string): number | null {
  const v = json[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== "number" || !(v >= 0 && v < 1)) {
    throw new WeightsError(`${file}: key "${key}" must be a dropout probability in [0, 1), got ${JSON.stringify(v)}`);
  }
  return v;
}

/** The drop rate a folder was saved with (`resid_pdrop`), or null when config.json has none. */
export function readSavedDropRate(dir: string): number | null {
  const { file, json } = readConfigJson(dir);
  return dropProbability(file, json, "resid_pdrop");
}

/**
 * Writes config.json as transformers writes it for GPT-2, with this model's sizes and drop
 * rate; `tied` says whether the output head is still wte (see saveGPT2Directory).
 */
export function writeGPT2Config(dir: string, cfg: GPTConfig, tied: boolean): void {
  const json = {
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
    layer_norm_epsilon: LAYERNORM_EPS,
    resid_pdrop: cfg.dropRate,
    embd_pdrop: cfg.dropRate,
    attn_pdrop: cfg.dropRate,
    tie_word_embeddings: tied,
    bos_token_id: END_OF_TEXT,
    eos_token_id: END_OF_TEXT,
  };
  writeFileAtomic(path.join(dir, CONFIG_FILE), (fd) => writeAll(fd, JSON.stringify(json, null, 2) + "\n"));
}
