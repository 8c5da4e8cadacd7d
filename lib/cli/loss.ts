/**
 * `npm run loss -- --weights DIR`: prints `loss: <number>`, the book's
 * `calc_loss_loader` over the chosen entries: in file order, batches of --batch-size,
 * the final collate cut to the model's context length (the book's allowed_max_length: 1024
 * for GPT-2; a longer batch could not go through the model), no shuffling, the last short
 * batch kept. The mean is over batches of each batch's mean loss.
 * The engine line goes to stderr, so stdout is only the answer.
 */
import type { EngineChoice } from "../engine";
import { Command } from "commander";
import { loadInstructionData, DEFAULT_DATA_FILE, InstructionEntry } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { loadGPT2Directory } from "../weights/gpt2-directory";
import { meanLoss } from "../train/stepper";
import { BOOK_BATCH_SIZE } from "../core/book";
import { ConfigError } from "../core/errors";
import { PROMPT_STYLES, PromptStyle } from "../data/prompt";
import { parseBackend, parseIntOption, parsePromptStyle, runCli, startEngine } from "./common";

const SPLITS = ["train", "val", "test", "all"] as const;

export async function main(): Promise<void> {
  const opts = new Command("loss")
    .description("Print the mean loss (the book's calc_loss_loader) of a model on a split of the instruction data")
    .requiredOption("--weights <dir>", "a Hugging Face GPT-2 folder (config.json + model.safetensors)")
    .option("--data <file>", "instruction data (JSON array of {instruction, input, output})", DEFAULT_DATA_FILE)
    .option("--split <name>", "train | val | test | all (the 85/10/5 split of the book, in file order)", "all")
    .option("--batch-size <n>", "sequences per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--prompt-style <name>", `prompt format the model was fine-tuned on: ${PROMPT_STYLES.join(" | ")}`, parsePromptStyle, "alpaca")
    .option("--mask-instructions", "the loss over the responses only (exercise 7.2's targets)", false)
    .option("--backend <name>", "tensorflow | webgpu | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    .parse()
    .opts<{ weights: string; data: string; split: string; batchSize: number; promptStyle: PromptStyle; maskInstructions: boolean; backend?: EngineChoice }>();
  if (!(SPLITS as readonly string[]).includes(opts.split)) {
    throw new ConfigError(`--split: expected one of ${SPLITS.join(", ")}, got "${opts.split}"`);
  }
  await startEngine(opts.backend, true);
  const data = await loadInstructionData(opts.data);
  const entries: InstructionEntry[] =
    opts.split === "all" ? data : splitData(data, { source: opts.data })[opts.split as "train" | "val" | "test"];
  const model = await loadGPT2Directory(opts.weights);
  const dataset = new InstructionDataset(entries, { promptStyle: opts.promptStyle, maskInstructions: opts.maskInstructions });
  const notice = dataset.truncationNotice(model.cfg.contextLength, `--split ${opts.split}`);
  if (notice) console.error(notice); // stderr: stdout is only the answer
  const loader = new DataLoader(dataset, {
    batchSize: opts.batchSize,
    collateOptions: { allowedMaxLength: model.cfg.contextLength },
  });
  const loss = await meanLoss(model, loader.arrayBatches(0)); // on webgpu, the course's own kernels
  console.log(`loss: ${loss}`);
  model.dispose();
}

if (require.main === module) runCli(main);
