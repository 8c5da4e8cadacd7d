/**
 * `npm run finetune`: the whole of chapter 7 in one command. Load the data, split it,
 * choose a model, fine-tune it with the book's `train_model_simple`, then write into the
 * run folder:
 *
 *   loss-history.json                 the losses, tokens seen and steps of every evaluation
 *   loss-plot.html, loss-plot.png     the book's loss plot (the PNG needs a Chromium)
 *   instruction-data-with-response.json   the test entries with a `model_response` field (section 7.7)
 *   model/                            the fine-tuned model as a Hugging Face GPT-2 folder
 *   lora-adapter/                     with --lora-rank: the LoRA adapter alone (model/ holds it merged)
 *   checkpoint/                       model + optimizer + position after each epoch (lib/train/checkpoint.ts)
 *
 * `--lora-rank R [--lora-alpha A]` fine-tunes as exercise 7.4 does: the weights frozen, a LoRA
 * update of rank R on every linear layer (output head included) trained instead (lib/model/lora.ts).
 *
 * Ctrl-C stops after the current step and saves a checkpoint; `--resume DIR` continues it.
 *
 * The chapter's exercises: `--prompt-style phi3` (7.1), `--mask-instructions` (7.2), and
 * `--data URL` (7.3: e.g. the 52k-entry Alpaca data, downloaded once into .cache/data with its
 * checksum) with `--allowed-max-length` and `--batch-size` to fit it in memory.
 *
 * `--model` also accepts a JSON file with GPTConfig fields (over the "tiny" config), which
 * the tests use to train a very small model in seconds; see lib/pretrained/select.ts.
 * A hidden `--response-tokens N` (tests only) caps the test-set responses (the book: 256).
 */
import type { EngineChoice } from "../engine";
import * as fs from "fs";
import * as path from "path";
import { Command, Option } from "commander";
import {
  BOOK_BATCH_SIZE, BOOK_EPOCHS, BOOK_EVAL_FREQ, BOOK_LORA_ALPHA, BOOK_EVAL_ITER, BOOK_LR, BOOK_MAX_NEW_TOKENS, BOOK_SEED, BOOK_WEIGHT_DECAY,
} from "../core/book";
import { ConfigError } from "../core/errors";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { loadInstructionData, DEFAULT_DATA_FILE, InstructionEntry } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { formatInput, PROMPT_STYLES, PromptStyle } from "../data/prompt";
import { resolveDataSource } from "../data/download";
import { formatParamSummary } from "../model/gpt";
import { formatLoRACounts } from "../model/lora";
import { saveGPT2Directory } from "../weights/gpt2-directory";
import { saveLoRAAdapter } from "../weights/lora-adapter";
import { RANDOM_INIT_LR } from "../train/adamw";
import { createAdamW } from "../train/adamw-fused";
import { trainModelSimple } from "../train/train";
import { CHECKPOINT_DIR, LORA_ADAPTER_DIR, loadCheckpoint, saveCheckpoint } from "../train/checkpoint";
import { generateResponses } from "../generate/batch";
import { saveLossPlot } from "../display/loss-plot";
import { progressDisplay } from "../display/progress";
import { runProgress } from "../display/run-progress";
import { checkOut, claimOut } from "./run-folder";
import { chooseModel } from "../pretrained/select";
import { parseBackend, parseIntOption, parseNumberOption, parsePromptStyle, runCli, startEngine } from "./common";

interface FinetuneOptions {
  model: string;
  weights?: string;
  data: string;
  epochs: number;
  batchSize: number;
  lr: number;
  weightDecay: number;
  evalFreq: number;
  evalIter: number;
  seed: number;
  limit?: number;
  out?: string;
  force: boolean;
  resume?: string;
  backend?: EngineChoice;
  loraRank?: number;
  loraAlpha: number;
  recompute?: boolean;
  responseTokens: number;
  promptStyle: PromptStyle;
  maskInstructions: boolean;
  allowedMaxLength?: number;
  dataSha256?: string;
}


function program(): Command {
  return new Command("finetune")
    .description("Instruction fine-tune GPT-2 as in chapter 7 and save the losses, plot, test responses and model")
    .option("--model <name>", "auto | gpt2-small | gpt2-medium | gpt2-large | gpt2-xl | tiny | <config.json>", "auto")
    .option("--weights <dir>", "start from this Hugging Face GPT-2 folder instead of --model")
    .option("--data <file|url>", "instruction data (JSON array of {instruction, input, output}); a URL is downloaded once into .cache/data", DEFAULT_DATA_FILE)
    .option("--data-sha256 <hex>", "the SHA-256 a downloaded --data must have")
    .option("--prompt-style <name>", `prompt format: ${PROMPT_STYLES.join(" | ")} (exercise 7.1)`, parsePromptStyle, "alpaca")
    .option("--mask-instructions", "score only the response: mask the instruction and input in the targets (exercise 7.2)", false)
    .option("--allowed-max-length <n>", "cut every sequence to n tokens (the book: the model's context length, 1024)", parseIntOption("allowed-max-length", 2))
    .option("--epochs <n>", "training epochs", parseIntOption("epochs", 1), BOOK_EPOCHS)
    .option("--batch-size <n>", "sequences per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--lr <x>", `AdamW learning rate (${RANDOM_INIT_LR} when starting from random weights)`, parseNumberOption("lr", 0), BOOK_LR)
    .option("--weight-decay <x>", "AdamW decoupled weight decay", parseNumberOption("weight-decay", 0), BOOK_WEIGHT_DECAY)
    .option("--eval-freq <n>", "evaluate every n steps", parseIntOption("eval-freq", 1), BOOK_EVAL_FREQ)
    .option("--eval-iter <n>", "batches per evaluation", parseIntOption("eval-iter", 1), BOOK_EVAL_ITER)
    .option("--seed <n>", "seed for init, shuffling and dropout", parseIntOption("seed", 0), BOOK_SEED)
    .option("--limit <n>", "use only the first n entries of the data file (quick runs)", parseIntOption("limit", 1))
    .option("--out <dir>", "run folder (default runs/<timestamp>)")
    .option("--force", "write into --out even if it exists and is not empty", false)
    .option("--resume <dir>", "continue the run in <dir> from its last checkpoint (same settings; --epochs may extend it)")
    .option("--backend <name>", "tensorflow | webgpu | wasm | cpu | auto (default: $COURSE_BACKEND or auto)", parseBackend)
    .option("--lora-rank <r>", "freeze the weights and train a LoRA update of this rank on every linear layer (exercise 7.4: 16)", parseIntOption("lora-rank", 1))
    .option("--lora-alpha <a>", "LoRA's alpha: the update is scaled by alpha / rank", parseNumberOption("lora-alpha", 0), BOOK_LORA_ALPHA)
    .option("--recompute", "recompute each block's activations in the backward pass: less memory, ~1/3 more compute (default: on for LoRA on wasm)")
    .option("--no-recompute", "keep every activation for the backward pass")
    // tests only: shorter test-set responses, so a CLI test finishes in seconds (the book: 256)
    .addOption(new Option("--response-tokens <n>").argParser(parseIntOption("response-tokens", 0)).default(BOOK_MAX_NEW_TOKENS).hideHelp());
}


/** A download progress bar on a terminal (the 52k Alpaca file is 22 MB), nothing elsewhere. */
function downloadProgress(): ((received: number, total: number | undefined) => void) | undefined {
  if (process.stdout.isTTY !== true) return undefined;
  const progress = runProgress("download");
  return (received, total) => {
    if (total === undefined) return;
    progress.update(received, total, `${(received / 1e6).toFixed(1)} MB`);
    if (received >= total) progress.done();
  };
}

async function main(): Promise<void> {
  const cmd = program().parse();
  let opts = cmd.opts<FinetuneOptions>();
  const engine = await startEngine(opts.backend);
  const log = (line: string) => console.log(line);
  // --resume: the run folder's checkpoint gives the model, optimizer, position and settings
  const resumed = opts.resume !== undefined ? await loadCheckpoint(opts.resume) : undefined;
  if (resumed) {
    const epochs = cmd.getOptionValueSource("epochs") === "cli" ? opts.epochs : (resumed.state.options.epochs as number);
    opts = { ...(resumed.state.options as unknown as FinetuneOptions), epochs, resume: opts.resume, backend: opts.backend };
    const p = resumed.state.position;
    log(`resuming ${opts.resume}: epoch ${p.epoch + 1}, step ${p.globalStep + 1}, ${p.tokensSeen} tokens seen`);
  }
  const outDir = resumed ? path.resolve(opts.resume as string) : checkOut(opts.out, opts.force);

  const dataFile = await resolveDataSource(opts.data, { sha256: opts.dataSha256, log, onProgress: downloadProgress() });
  let entries: InstructionEntry[] = await loadInstructionData(dataFile);
  if (opts.limit !== undefined) entries = entries.slice(0, opts.limit);
  const { train, test, val } = splitData(entries, { source: opts.data });
  log(`data: ${opts.data}: ${entries.length} entries -> train ${train.length}, val ${val.length}, test ${test.length}`);

  const { model, name, source, pretrained } = resumed
    ? { model: resumed.model, name: "checkpoint", source: path.join(outDir, CHECKPOINT_DIR), pretrained: true }
    : await chooseModel({ model: opts.model, weightsDir: opts.weights, seed: opts.seed, log });
  const description = pretrained ? `${name}, pretrained (${source})` : `${name}, ${source}`;
  log(`model: ${description}`);
  if (!resumed && !pretrained && cmd.getOptionValueSource("lr") === "default") {
    opts.lr = RANDOM_INIT_LR;
    log(`lr: ${opts.lr} (random init; the book's ${BOOK_LR} is for pretrained weights; set --lr to override)`);
  }
  log(formatParamSummary(model));
  if (!resumed && opts.loraRank !== undefined) {
    const before = model.numTrainableParams();
    const adapter = model.applyLoRA({ rank: opts.loraRank, alpha: opts.loraAlpha, seed: opts.seed });
    log(formatLoRACounts(before, adapter.numParams()));
    log(`LoRA: rank ${adapter.rank}, alpha ${adapter.alpha} on ${adapter.layers.size} linear layers (the weights are frozen)`);
  } else if (resumed && model.lora !== null) {
    log(`LoRA: rank ${model.lora.rank}, alpha ${model.lora.alpha}: ${model.numTrainableParams().toLocaleString("en-US")} trainable parameters (from the checkpoint)`);
  }
  model.recomputeActivations = opts.recompute ?? (model.lora !== null && engine.name === "wasm");
  if (model.recomputeActivations) log(`activations: recomputed in the backward pass${opts.recompute ? "" : " (LoRA on wasm: its heap holds 4 GiB; --no-recompute to keep them)"}`);

  // the book's loaders: train shuffled with drop_last, val/test in order; cut to the model's context
  // (or to --allowed-max-length, exercise 7.3's way to fit longer data into memory)
  const maxLength = opts.allowedMaxLength ?? model.cfg.contextLength;
  if (maxLength > model.cfg.contextLength) {
    throw new ConfigError(`--allowed-max-length ${maxLength} is longer than the model's context length (${model.cfg.contextLength} tokens)`);
  }
  const collateOptions = { allowedMaxLength: maxLength };
  const datasetOptions = { promptStyle: opts.promptStyle, maskInstructions: opts.maskInstructions };
  if (opts.promptStyle !== "alpaca" || opts.maskInstructions) {
    log(`prompt style: ${opts.promptStyle}${opts.maskInstructions ? "; instruction and input masked in the targets (only the response is scored)" : ""}`);
  }
  const trainSet = new InstructionDataset(train, datasetOptions);
  const notice = trainSet.truncationNotice(maxLength, "train split");
  if (notice) log(notice);
  const trainLoader = new DataLoader(trainSet, { batchSize: opts.batchSize, shuffle: true, dropLast: true, seed: opts.seed, collateOptions });
  const valLoader = new DataLoader(new InstructionDataset(val, datasetOptions), { batchSize: opts.batchSize, collateOptions });

  if (!resumed) claimOut(outDir, opts.force);
  const optimizer = createAdamW(model.trainableParams(), { lr: opts.lr, weightDecay: opts.weightDecay });
  if (resumed) optimizer.importState(resumed.optimizerState);

  // Ctrl-C: finish the current step, save, stop; a second Ctrl-C quits at once
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error("\nstopping after this step and saving (Ctrl-C again to quit at once)");
  };
  process.on("SIGINT", onSigint);
  // progress bars only on a terminal: a log file or a test's pipe gets the log lines alone
  const bars = process.stdout.isTTY === true;
  const progress = runProgress("step", { enabled: bars, log });
  const say = progress.log;
  const started = Date.now();
  const history = await trainModelSimple(model, trainLoader, valLoader, optimizer, {
    numEpochs: opts.epochs,
    evalFreq: opts.evalFreq,
    evalIter: opts.evalIter,
    startContext: formatInput(val[0], opts.promptStyle),
    log: say,
    shouldStop: () => interrupted,
    resume: resumed ? { position: resumed.state.position, history: resumed.state.history } : undefined,
    // a checkpoint after every epoch, for --resume (and kill -9)
    onEpochEnd: async ({ position, history }) => {
      await saveCheckpoint(outDir, { model, optimizer, position, history, options: { ...opts } as Record<string, unknown> });
      say(`checkpoint: ${path.join(outDir, CHECKPOINT_DIR)} (epoch ${position.epoch})`);
    },
    onStep: progress.onStep,
  });
  progress.done();
  const minutes = (Date.now() - started) / 60000;
  if (history.stopped) {
    // mid-epoch: save where we are, so --resume continues from this very step
    await saveCheckpoint(outDir, { model, optimizer, position: history.position, history, options: { ...opts } as Record<string, unknown> });
    log(`interrupted at step ${history.position.globalStep}; saved ${path.join(outDir, CHECKPOINT_DIR)}; continue with --resume ${outDir}`);
  } else {
    log(`Training completed in ${minutes.toFixed(2)} minutes.`);
  }
  process.off("SIGINT", onSigint);
  optimizer.dispose();

  const historyFile = path.join(outDir, "loss-history.json");
  const { position: _position, stopped: _stopped, ...curves } = history;
  const historyJson = JSON.stringify({ ...curves, numEpochs: opts.epochs, minutes, model: description, options: opts }, null, 2) + "\n";
  writeFileAtomic(historyFile, (fd) => writeAll(fd, historyJson));
  log(`saved ${historyFile}`);
  const plot = await saveLossPlot(curves, outDir, "loss-plot", { numEpochs: opts.epochs });
  log(`saved ${plot.html}`);
  log(plot.png ? `saved ${plot.png}` : `no loss-plot.png: ${plot.reason} (the HTML plot is there)`);
  if (history.stopped) {
    model.dispose();
    return;
  }

  // section 7.7: a response for every test entry
  const genBar = bars && test.length > 0 ? progressDisplay(test.length, "responses") : undefined;
  // in batches of prompts (lib/generate/batch.ts): the same responses as generateResponse one entry at a time
  const texts = await generateResponses(model, test, { maxNewTokens: opts.responseTokens, promptStyle: opts.promptStyle, onProgress: (n) => genBar?.tick(n) });
  const responses: Array<InstructionEntry & { model_response: string }> = test.map((entry, i) => ({ ...entry, model_response: texts[i] }));
  genBar?.done();
  const responsesFile = path.join(outDir, "instruction-data-with-response.json");
  const responsesJson = JSON.stringify(responses, null, 4) + "\n"; // indent=4, as the book's json.dump
  writeFileAtomic(responsesFile, (fd) => writeAll(fd, responsesJson));
  log(`saved ${responsesFile}`);

  const modelDir = path.join(outDir, "model");
  await saveGPT2Directory(model, modelDir); // with LoRA: merged, W + (alpha/r)·A@B, a plain GPT-2
  log(`saved ${modelDir}`);
  if (model.lora !== null) {
    const adapterDir = path.join(outDir, LORA_ADAPTER_DIR);
    await saveLoRAAdapter(model, adapterDir);
    log(`saved ${adapterDir} (the LoRA adapter alone: rank ${model.lora.rank}, alpha ${model.lora.alpha})`);
  }
  model.dispose();
}

if (require.main === module) runCli(main);
