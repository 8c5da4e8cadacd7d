/**
 * The book's parameter counts (chapter 4): "Total number of parameters: 163,009,536" for gpt2-small,
 * with and without the head that GPT-2 shares with the token embedding, and the model's size in MB.
 */
import type { GPTConfig } from "./config";

/** What the counts need of a model (GPTModel has it; named here so this file does not import the model). */
interface CountedModel {
  cfg: GPTConfig;
  numParams(): number;
}

/** Parameter count of a config without building it (the xl model would need 6 GB). */
export function countParams(cfg: GPTConfig): number {
  const c = cfg.embDim;
  const norm = 2 * c;
  const qkv = 3 * (c * c + (cfg.qkvBias ? c : 0));
  const att = qkv + c * c + c;
  const ff = c * 4 * c + 4 * c + 4 * c * c + c;
  const block = 2 * norm + att + ff;
  return cfg.vocabSize * c + cfg.contextLength * c + cfg.nLayers * block + norm + c * cfg.vocabSize;
}

export interface ParamSummary {
  /** every trainable value */
  total: number;
  /** total minus the output head, which GPT-2 shares with the token embedding */
  withWeightTying: number;
  /** float32 size of all parameters in MB (2^20 bytes), as the book prints it */
  sizeMB: number;
}

/** The book's parameter summary, for a model or a config. */
export function paramSummary(modelOrCfg: CountedModel | GPTConfig): ParamSummary {
  const cfg = isModel(modelOrCfg) ? modelOrCfg.cfg : modelOrCfg;
  const total = isModel(modelOrCfg) ? modelOrCfg.numParams() : countParams(cfg);
  return {
    total,
    withWeightTying: total - cfg.embDim * cfg.vocabSize,
    sizeMB: (total * 4) / (1024 * 1024),
  };
}

/** The three lines the book prints in chapter 4, e.g. "Total number of parameters: 163,009,536". */
export function formatParamSummary(modelOrCfg: CountedModel | GPTConfig): string {
  const s = paramSummary(modelOrCfg);
  const n = (x: number) => x.toLocaleString("en-US");
  return [
    `Total number of parameters: ${n(s.total)}`,
    `Number of trainable parameters considering weight tying: ${n(s.withWeightTying)}`,
    `Total size of the model: ${s.sizeMB.toFixed(2)} MB`,
  ].join("\n");
}

export function printParamSummary(modelOrCfg: CountedModel | GPTConfig): void {
  console.log(formatParamSummary(modelOrCfg));
}

function isModel(x: CountedModel | GPTConfig): x is CountedModel {
  return typeof (x as CountedModel).numParams === "function";
}
