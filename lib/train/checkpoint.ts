/**
 * Training checkpoints: everything needed to continue a run exactly where it stopped.
 *
 *   <run>/checkpoint/model/             the model, as a Hugging Face GPT-2 folder
 *   <run>/checkpoint/optimizer.safetensors   AdamW's m and v ("m.<param>", "v.<param>")
 *   <run>/checkpoint/state.json         step count, loop position, loss history, drop rate, options
 *   <run>/checkpoint/lora-adapter/      with LoRA: the adapter (lib/weights/lora-adapter.ts); model/
 *                                       then holds the frozen base weights, and the moments are A's and B's
 *
 * A checkpoint is written whole into a temporary folder (each file through writeFileAtomic)
 * and then swapped in by renames, so `kill -9` at any moment leaves a loadable checkpoint:
 * either the new one, or the previous one (under `checkpoint` or, between the two renames,
 * `checkpoint.old`).
 * The loader position (epoch, batch) is enough to replay the data order, since the
 * loader's order depends only on (seed, epoch).
 */
import * as fs from "fs";
import * as path from "path";
import { isAlive, writeAll, writeFileAtomic } from "../core/atomic-file";
import { BOOK_DROP_RATE } from "../core/book";
import { ConfigError } from "../core/errors";
import { Rng } from "../core/random";
import type { GPTModel } from "../model/gpt";
import { readSavedDropRate } from "../weights/config-file";
import { loadGPT2Directory, saveGPT2Directory } from "../weights/gpt2-directory";
import { loadLoRAAdapter, saveLoRAAdapter } from "../weights/lora-adapter";
import { readSafetensors } from "../weights/safetensors-read";
import { TensorToWrite, writeSafetensors } from "../weights/safetensors-write";
import type { AdamW, AdamWState, SavedTensor } from "./adamw";
import type { TrainHistory, TrainPosition } from "./train";

export const CHECKPOINT_DIR = "checkpoint";
const STATE_FILE = "state.json";
const OPTIMIZER_FILE = "optimizer.safetensors";
/** The LoRA adapter's folder, in a checkpoint and beside a fine-tuned model. */
export const LORA_ADAPTER_DIR = "lora-adapter";

export interface CheckpointState {
  position: TrainPosition;
  history: TrainHistory;
  /** the model's dropout Rng state, so dropout masks continue the same stream */
  modelRngState: number;
  /** the run's dropout probability: loading GPT-2 weights alone would give the book's 0.0 */
  dropRate: number;
  /** AdamW's hyperparameters and step count (the moments are in optimizer.safetensors) */
  optimizer: Omit<AdamWState, "m" | "v">;
  /** the run's options (for the command line to continue with the same settings) */
  options: Record<string, unknown>;
}

/** Write a checkpoint of the run into `<runDir>/checkpoint`, atomically (see the file comment). */
export async function saveCheckpoint(
  runDir: string,
  parts: { model: GPTModel; optimizer: AdamW; position: TrainPosition; history: TrainHistory; options: Record<string, unknown> },
): Promise<string> {
  const final = path.join(runDir, CHECKPOINT_DIR);
  const tmp = path.join(runDir, `${CHECKPOINT_DIR}.tmp-${process.pid}`);
  const old = path.join(runDir, `${CHECKPOINT_DIR}.old`);
  recoverFromKilledSave(runDir);
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  // with LoRA: the base weights unmerged, and the adapter apart, so a resumed run trains the same A and B
  await saveGPT2Directory(parts.model, path.join(tmp, "model"), { lora: "base" });
  if (parts.model.lora !== null) await saveLoRAAdapter(parts.model, path.join(tmp, LORA_ADAPTER_DIR));
  const { m, v, ...hyper } = await parts.optimizer.exportState();
  const tensors = new Map<string, TensorToWrite>();
  for (const [name, t] of Object.entries(m)) tensors.set(`m.${name}`, t);
  for (const [name, t] of Object.entries(v)) tensors.set(`v.${name}`, t);
  writeSafetensors(path.join(tmp, OPTIMIZER_FILE), tensors, { step: String(hyper.step) });
  const state: CheckpointState = {
    position: parts.position,
    history: parts.history,
    modelRngState: parts.model.rng.state,
    dropRate: parts.model.cfg.dropRate,
    optimizer: hyper,
    options: parts.options,
  };
  writeFileAtomic(path.join(tmp, STATE_FILE), (fd) => writeAll(fd, JSON.stringify(state, null, 2) + "\n"));
  // swap: the previous checkpoint stays loadable until the new one is in place
  fs.rmSync(old, { recursive: true, force: true });
  if (fs.existsSync(final)) fs.renameSync(final, old);
  fs.renameSync(tmp, final);
  fs.rmSync(old, { recursive: true, force: true });
  return final;
}

/**
 * Tidies what a save killed with `kill -9` left in `runDir`. Killed between its two renames,
 * it left the previous checkpoint only in `checkpoint.old`: move it back first, or this save
 * would delete the one loadable checkpoint before its own is in place. Killed earlier, it left
 * a temporary folder (a whole model and optimizer state): delete those whose writer is gone.
 */
function recoverFromKilledSave(runDir: string): void {
  const final = path.join(runDir, CHECKPOINT_DIR);
  const old = path.join(runDir, `${CHECKPOINT_DIR}.old`);
  if (!fs.existsSync(final) && fs.existsSync(path.join(old, STATE_FILE))) fs.renameSync(old, final);
  if (!fs.existsSync(runDir)) return;
  const prefix = `${CHECKPOINT_DIR}.tmp-`;
  for (const entry of fs.readdirSync(runDir)) {
    const pid = Number(entry.slice(prefix.length));
    if (entry.startsWith(prefix) && Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) {
      fs.rmSync(path.join(runDir, entry), { recursive: true, force: true });
    }
  }
}

export interface LoadedCheckpoint {
  model: GPTModel;
  /** pass to `optimizer.importState` */
  optimizerState: AdamWState;
  state: CheckpointState;
}

/** Load `<runDir>/checkpoint` (or `checkpoint.old`, if a save was killed between its renames). */
export async function loadCheckpoint(runDir: string): Promise<LoadedCheckpoint> {
  let dir = path.join(runDir, CHECKPOINT_DIR);
  if (!fs.existsSync(path.join(dir, STATE_FILE))) dir = path.join(runDir, `${CHECKPOINT_DIR}.old`);
  if (!fs.existsSync(path.join(dir, STATE_FILE))) {
    throw new ConfigError(`${runDir}: no checkpoint to resume from (expected ${path.join(runDir, CHECKPOINT_DIR, STATE_FILE)})`);
  }
  let state: CheckpointState;
  try {
    state = JSON.parse(fs.readFileSync(path.join(dir, STATE_FILE), "utf8")) as CheckpointState;
  } catch (err) {
    throw new ConfigError(`${path.join(dir, STATE_FILE)}: unreadable checkpoint state (${(err as Error).message.split("\n")[0]})`);
  }
  const modelDir = path.join(dir, "model");
  // a checkpoint from before state.json kept the rate still has it in the model's config.json
  const dropRate = state.dropRate ?? readSavedDropRate(modelDir) ?? BOOK_DROP_RATE;
  if (typeof dropRate !== "number" || !(dropRate >= 0 && dropRate < 1)) {
    throw new ConfigError(`${path.join(dir, STATE_FILE)}: "dropRate" must be a probability in [0, 1), got ${JSON.stringify(dropRate)}`);
  }
  const model = await loadGPT2Directory(modelDir, { dropRate });
  model.rng = Rng.fromState(state.modelRngState);
  if (fs.existsSync(path.join(dir, LORA_ADAPTER_DIR))) loadLoRAAdapter(model, path.join(dir, LORA_ADAPTER_DIR));
  const m: Record<string, SavedTensor> = {};
  const v: Record<string, SavedTensor> = {};
  const tensors = readSafetensors(path.join(dir, OPTIMIZER_FILE));
  for (const [key, t] of tensors) {
    const store = key.startsWith("m.") ? m : key.startsWith("v.") ? v : null;
    if (store === null) throw new ConfigError(`${path.join(dir, OPTIMIZER_FILE)}: unexpected tensor "${key}"`);
    store[key.slice(2)] = { shape: t.shape, data: t.data };
  }
  return { model, optimizerState: { ...state.optimizer, m, v }, state };
}
