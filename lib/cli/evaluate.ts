/**
 * `npm run evaluate -- --weights DIR`: prints `loss: <number>`, the book's
 * `calc_loss_loader` over the chosen entries: in file order, batches of --batch-size,
 * the final collate cut to 1024 tokens (the book's allowed_max_length), no shuffling,
 * the last short batch kept. The mean is over batches of each batch's mean loss.
 * The engine line goes to stderr, so stdout is only the answer.
 */
import { Command } from "commander";
import { loadInstructionData, DEFAULT_DATA_FILE, InstructionEntry } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { loadGPT2Directory } from "../weights/gpt2-directory";
import { calcLossLoader } from "../train/loss";
import { ConfigError } from "../core/errors";
import { parseBackend, parseIntOption, runCli, startEngine } from "./common";

/** The book's `allowed_max_length` for the final collate (section 7.3). */
export const EVAL_ALLOWED_MAX_LENGTH = 1024;
const SPLITS = ["train", "val", "test", "all"] as const;

async function main(): Promise<void> {
  const opts = new Command("evaluate")
    .description("Print the mean loss (the book's calc_loss_loader) of a model on a split of the instruction data")
    .requiredOption("--weights <dir>", "a Hugging Face GPT-2 folder (config.json + model.safetensors)")
    .option("--data <file>", "instruction data (JSON array of {instruction, input, output})", DEFAULT_DATA_FILE)
    .option("--split <name>", "train | val | test | all (the 85/10/5 split of the book, in file order)", "all")
    .option("--batch-size <n>", "sequences per batch", parseIntOption(1), 8)
    .option("--backend <name>", "tensorflow | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    .parse()
    .opts<{ weights: string; data: string; split: string; batchSize: number; backend?: "auto" | "tensorflow" | "wasm" | "cpu" }>();
  if (!(SPLITS as readonly string[]).includes(opts.split)) {
    throw new ConfigError(`--split: expected one of ${SPLITS.join(", ")}, got "${opts.split}"`);
  }
  await startEngine(opts.backend, true);
  const data = await loadInstructionData(opts.data);
  const entries: InstructionEntry[] =
    opts.split === "all" ? data : splitData(data, { source: opts.data })[opts.split as "train" | "val" | "test"];
  const model = await loadGPT2Directory(opts.weights);
  const loader = new DataLoader(new InstructionDataset(entries), {
    batchSize: opts.batchSize,
    collateOptions: { allowedMaxLength: EVAL_ALLOWED_MAX_LENGTH },
  });
  const loss = calcLossLoader(loader.batches(0), model);
  console.log(`loss: ${loss}`);
  model.dispose();
}

if (require.main === module) runCli(main);
