/**
 * Model configurations: the book's GPT-2 sizes and a tiny one for offline CPU runs.
 *
 * The book keeps these as Python dicts (`GPT_CONFIG_124M`, `model_configs`);
 * here they are typed objects so a misspelt field is a compile error.
 */
import { ConfigError } from "../core/errors";

export interface GPTConfig {
  /** Number of token ids the model knows: 50,257 for GPT-2's BPE tokenizer. */
  vocabSize: number;
  /** Longest sequence the model accepts (rows of the position embedding). */
  contextLength: number;
  /** Width of every token's vector (C): embeddings, attention and the residual stream. */
  embDim: number;
  /** Attention heads per block; embDim must divide evenly among them. */
  nHeads: number;
  /** Number of transformer blocks stacked between the embeddings and the output head. */
  nLayers: number;
  /** Dropout probability for embeddings, attention weights and residual branches (training only). */
  dropRate: number;
  /** Whether the query/key/value projections have a bias; GPT-2's checkpoints do. */
  qkvBias: boolean;
}

/** What all GPT-2 checkpoints share; the sizes below only change width and depth. */
const GPT2_BASE = {
  vocabSize: 50257,
  contextLength: 1024,
  // 0.0 for fine-tuning, as the book's chapter 7 sets `drop_rate`
  dropRate: 0.0,
  qkvBias: true,
};

export const GPT2_SMALL: GPTConfig = { ...GPT2_BASE, embDim: 768, nLayers: 12, nHeads: 12 };
export const GPT2_MEDIUM: GPTConfig = { ...GPT2_BASE, embDim: 1024, nLayers: 24, nHeads: 16 };
export const GPT2_LARGE: GPTConfig = { ...GPT2_BASE, embDim: 1280, nLayers: 36, nHeads: 20 };
export const GPT2_XL: GPTConfig = { ...GPT2_BASE, embDim: 1600, nLayers: 48, nHeads: 25 };

/**
 * A small model for offline CPU runs: same tokenizer and context as GPT-2, so
 * the data pipeline is unchanged, but about 13M parameters (most of them the
 * two 50,257-row embedding tables) instead of 124M.
 */
export const TINY: GPTConfig = { ...GPT2_BASE, embDim: 128, nLayers: 2, nHeads: 4 };

/** The names the book uses (`CHOOSE_MODEL = "gpt2-medium (355M)"`), plus "tiny". */
export const MODEL_CONFIGS: Record<string, GPTConfig> = {
  "gpt2-small (124M)": GPT2_SMALL,
  "gpt2-medium (355M)": GPT2_MEDIUM,
  "gpt2-large (774M)": GPT2_LARGE,
  "gpt2-xl (1558M)": GPT2_XL,
  tiny: TINY,
};

/** Short names for the command line: "gpt2-medium" instead of "gpt2-medium (355M)". */
const ALIASES: Record<string, string> = {
  "gpt2-small": "gpt2-small (124M)",
  "gpt2-medium": "gpt2-medium (355M)",
  "gpt2-large": "gpt2-large (774M)",
  "gpt2-xl": "gpt2-xl (1558M)",
  // Hugging Face's repository name for the small model is plain "gpt2"
  gpt2: "gpt2-small (124M)",
};

/**
 * The config for a model name: a key of MODEL_CONFIGS or a short alias
 * (case-insensitive). Returns a copy, so callers may change e.g. dropRate.
 */
export function resolveModelConfig(name: string): GPTConfig {
  const wanted = name.trim().toLowerCase();
  for (const key of Object.keys(MODEL_CONFIGS)) {
    if (key.toLowerCase() === wanted) return { ...MODEL_CONFIGS[key] };
  }
  const alias = ALIASES[wanted];
  if (alias !== undefined) return { ...MODEL_CONFIGS[alias] };
  const choices = [...Object.keys(ALIASES).filter((a) => a !== "gpt2"), ...Object.keys(MODEL_CONFIGS)];
  throw new ConfigError(`unknown model "${name}"; choose one of: ${choices.map((c) => `"${c}"`).join(", ")}`);
}

/** Throws a ConfigError naming the field if the config cannot build a model. */
export function validateConfig(cfg: GPTConfig): void {
  const positive = ["vocabSize", "contextLength", "embDim", "nHeads", "nLayers"] as const;
  for (const field of positive) {
    const v = cfg[field];
    if (!Number.isInteger(v) || v <= 0) {
      throw new ConfigError(`model config: ${field} must be a positive integer, got ${v}`);
    }
  }
  if (cfg.embDim % cfg.nHeads !== 0) {
    throw new ConfigError(`model config: embDim ${cfg.embDim} is not divisible by nHeads ${cfg.nHeads}`);
  }
  if (!(cfg.dropRate >= 0 && cfg.dropRate < 1)) {
    throw new ConfigError(`model config: dropRate must be in [0, 1), got ${cfg.dropRate}`);
  }
}
