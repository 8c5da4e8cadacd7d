/**
 * A LoRA adapter on disk, beside the merged model it was trained into:
 *
 *   <dir>/adapter.safetensors     every A (in, rank) and B (rank, out), under the library's names
 *                                 (`blocks.0.att.wQuery.lora.A`, …, `outHead.lora.B`)
 *   <dir>/adapter_config.json     {"rank", "alpha", "targets": [layer names], "base": the model's sizes}
 *
 * A few MB instead of the model's GB; `loadLoRAAdapter` applies it to the base model again (the
 * pretrained GPT-2 it was trained on), which then computes what the fine-tuned model does.
 * Both files are written atomically; every problem reading them is a one-line WeightsError naming
 * the file and the key or tensor.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as tf from "@tensorflow/tfjs";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { WeightsError } from "../core/errors";
import type { GPTModel } from "../model/gpt";
import { LoRAAdapter, linearShapes } from "../model/lora";
import { fmtShape, quoted } from "./safetensors-format";
import { readSafetensors } from "./safetensors-read";
import { TensorToWrite, writeSafetensors } from "./safetensors-write";

export const ADAPTER_WEIGHTS_FILE = "adapter.safetensors";
export const ADAPTER_CONFIG_FILE = "adapter_config.json";

export interface AdapterConfig {
  rank: number;
  alpha: number;
  /** library names of the wrapped linear layers */
  targets: string[];
  /** the sizes of the model it belongs to */
  base: { vocabSize: number; contextLength: number; embDim: number; nHeads: number; nLayers: number };
}

/** Writes the model's LoRA adapter into `dir` (created if needed). */
export async function saveLoRAAdapter(model: GPTModel, dir: string): Promise<void> {
  const adapter = model.lora;
  if (adapter === null) throw new WeightsError(`saveLoRAAdapter: the model has no LoRA adapter to save into ${dir}`);
  fs.mkdirSync(dir, { recursive: true });
  const tensors = new Map<string, TensorToWrite>();
  // read with `await data()`, which works on every engine
  for (const [name, v] of adapter.params) tensors.set(name, { shape: v.shape.slice(), data: (await v.data()) as Float32Array });
  writeSafetensors(path.join(dir, ADAPTER_WEIGHTS_FILE), tensors, { format: "pt", rank: String(adapter.rank), alpha: String(adapter.alpha) });
  const { vocabSize, contextLength, embDim, nHeads, nLayers } = model.cfg;
  const config: AdapterConfig = { rank: adapter.rank, alpha: adapter.alpha, targets: adapter.targets, base: { vocabSize, contextLength, embDim, nHeads, nLayers } };
  writeFileAtomic(path.join(dir, ADAPTER_CONFIG_FILE), (fd) => writeAll(fd, JSON.stringify(config, null, 2) + "\n"));
}

/** adapter_config.json, checked field by field against the model it is to be applied to. */
export function readAdapterConfig(dir: string, model: GPTModel): AdapterConfig {
  const file = path.join(dir, ADAPTER_CONFIG_FILE);
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new WeightsError(`${file}: ${e.code === "ENOENT" ? "not found (a LoRA adapter folder holds adapter_config.json and adapter.safetensors)" : `unreadable (${e.message.split("\n")[0]})`}`);
  }
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new WeightsError(`${file}: expected a JSON object`);
  const { rank, alpha, targets, base } = json as Partial<AdapterConfig>;
  if (!Number.isInteger(rank) || (rank as number) < 1) throw new WeightsError(`${file}: "rank" must be an integer >= 1, got ${JSON.stringify(rank)}`);
  if (typeof alpha !== "number" || !(alpha > 0) || !Number.isFinite(alpha)) throw new WeightsError(`${file}: "alpha" must be a number > 0, got ${JSON.stringify(alpha)}`);
  const layers = linearShapes(model.cfg);
  if (!Array.isArray(targets) || targets.length === 0 || targets.some((t) => typeof t !== "string")) {
    throw new WeightsError(`${file}: "targets" must be a non-empty list of layer names`);
  }
  const unknown = targets.find((t) => !layers.has(t));
  if (unknown !== undefined) throw new WeightsError(`${file}: "targets" names ${quoted(unknown)}, which is not a linear layer of this model (n_layer ${model.cfg.nLayers})`);
  if (base !== undefined) {
    for (const key of ["vocabSize", "contextLength", "embDim", "nHeads", "nLayers"] as const) {
      if (base[key] !== model.cfg[key]) throw new WeightsError(`${file}: "base.${key}" is ${base[key]}, the model's is ${model.cfg[key]}: the adapter belongs to another model`);
    }
  }
  return { rank: rank as number, alpha, targets, base: base as AdapterConfig["base"] };
}

/** Applies the adapter saved in `dir` to `model` (which must have none yet): the model then computes the fine-tuned one. */
export function loadLoRAAdapter(model: GPTModel, dir: string): LoRAAdapter {
  const config = readAdapterConfig(dir, model);
  const file = path.join(dir, ADAPTER_WEIGHTS_FILE);
  const tensors = readSafetensors(file);
  const adapter = model.applyLoRA({ rank: config.rank, alpha: config.alpha, targets: config.targets });
  try {
    for (const [name, v] of adapter.params) {
      const t = tensors.get(name);
      if (t === undefined) throw new WeightsError(`${file}: missing tensor ${quoted(name)} (adapter_config.json lists its layer)`);
      if (fmtShape(t.shape) !== fmtShape(v.shape)) {
        throw new WeightsError(`${file}: tensor ${quoted(name)} has shape ${fmtShape(t.shape)}, but rank ${config.rank} on this model needs ${fmtShape(v.shape)}`);
      }
      if (!t.data.every(Number.isFinite)) throw new WeightsError(`${file}: tensor ${quoted(name)} holds NaN or infinite values`);
      tf.tidy(() => v.assign(tf.tensor(t.data, v.shape, "float32")));
    }
    const extra = [...tensors.keys()].find((n) => !adapter.params.has(n));
    if (extra !== undefined) throw new WeightsError(`${file}: unexpected tensor ${quoted(extra)}: not an A or B of the layers adapter_config.json lists`);
  } catch (err) {
    model.removeLoRA(); // a half-loaded adapter goes: the model is its base again
    throw err;
  }
  return adapter;
}
