/**
 * `npm run bench -- --config bench-tiny|gpt2-small|gpt2-medium [--steps N] [--gen K] [--max-new-tokens M]
 *                   [--gen-batch B] [--group-by-length] [--lora-rank R [--lora-alpha A]] [--vs-torch] [--backend auto|tensorflow|webgpu|wasm|cpu]`
 *
 * A benchmark, not a test: from random init (the book's seed), the first N training steps of the
 * seeded train loader (batch 8, AdamW lr 5e-5, weight decay 0.1: the book's fine-tuning),
 * then greedy generation for the first K test prompts, exactly M new tokens each (no end-of-text stop,
 * so every side makes the same count), with the key/value cache: one prompt at a time as `generate`
 * runs it (gen_tokens_per_s), and in batches of B as `finetune` runs it (gen_batch_tokens_per_s).
 * Prints one JSON line: backend, step_s (median), train_tokens_per_s (padded tokens, as
 * PyTorch sees them), real_tokens_per_s (targets that are not -100), the generation figures,
 * peak_rss_mib (and peak_heap_mib, the wasm heap), trainable_params. Progress goes to stderr.
 *
 * --dpo: instead, DPO steps, full or LoRA, with their own options (bench-dpo.ts; `npm run bench -- --dpo --help`).
 *
 * --responses DIR: instead, the test set's responses with a fine-tuned folder, against transformers with --vs-torch (bench-responses.ts).
 *
 * --profile: after the timed steps, one more under tf.profile; the time by kernel (bench-profile.ts) to stderr and the JSON.
 * On the webgpu engine the steps run on the course's own kernels (lib/train/gpu-trainer.ts; --tfjs-path for TF.js's):
 * the line adds dispatches_per_step and record_ms_per_step (the host's time to record a step), and --profile
 * times one more step's kernels on the GPU (timestamp queries, bench-kernels.ts).
 *
 * --kernels: instead, what one dispatch costs (a TF.js op, a dispatch of the course's runtime) and the GPU
 * path's matmul on GPT-2's shapes, every tile, in TFLOP/s (webgpu engine).
 *
 * --recompute / --no-recompute: activation recomputation (lib/model/recompute.ts; default on for LoRA on wasm).
 *
 * --lora-rank R trains a LoRA adapter of rank R on every linear layer instead (exercise 7.4,
 * lib/model/lora.ts; alpha --lora-alpha, default the book's 16); torch runs the book's appendix-E
 * LoRA on the same batches.
 *
 * --schedule E times the book's whole schedule instead: every train batch of E epochs, with an
 * evaluation (5 train + 5 val batches, no gradients) after steps 0, 5, 10, … — the trainer's own
 * schedule (lib/train/schedule.ts's `trainSchedule`), replayed identically by both sides; adds
 * schedule_s (wall).
 *
 * --vs-torch also runs test/reference/torch_bench.py (with $COURSE_PYTHON, else $COURSE_HF_PYTHON, else
 * .cache/venv's Python — pip's newest torch and transformers, made by .ci/run — else `python3`) on the
 * very same token batches and prompts: the book's code on torch for training (and the book's
 * generate loop, no cache), and transformers' `generate` (KV cache, one prompt and batches of B,
 * left-padded) for generation. It adds their figures, versions and the ratios (ours / theirs) to
 * the line; where Python or torch is absent it says so in one line and still prints ours.
 * --torch-device cuda runs that reference on the GPU (fp32), for the ratio against the GPU path there.
 */
import * as tf from "@tensorflow/tfjs";
import { Command } from "commander";
import { BOOK_BATCH_SIZE, BOOK_LORA_ALPHA, BOOK_EVAL_FREQ, BOOK_EVAL_ITER, BOOK_LR, BOOK_MAX_NEW_TOKENS, BOOK_SEED, BOOK_WEIGHT_DECAY } from "../core/book";
import { ConfigError } from "../core/errors";
import type { EngineChoice } from "../engine";
import { DEFAULT_DATA_FILE, loadInstructionData } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { batchTensors, IGNORE_INDEX } from "../data/collate";
import { formatInput } from "../data/prompt";
import { encodeText, END_OF_TEXT } from "../data/tokenizer";
import type { GPTConfig } from "../model/config";
import { GPTModel } from "../model/gpt";
import { calcLossLoader } from "../train/loss";
import { createAdamW } from "../train/adamw-fused";
import { ArrayBatch, readArrays, trainSchedule, trainStep } from "../train/train";
import { calcLossBatchFused } from "../train/fused-loss";
import { GENERATE_BATCH_SIZE } from "../generate/batch";
import { trainingMemoryProblem, wasmHeapBytes } from "../engine/memory";
import { parseBackend, parseIntOption, parseNumberOption, round, runCli, startEngine } from "./common";
import { benchGeneration } from "./bench-generate";
import { BenchEvent, benchTraining, trainingFigures } from "./bench-train";
import { benchKernels, dispatchCost } from "./bench-kernels";
import { runTorchBench } from "./bench-torch";
import { profileOneStep } from "./bench-profile";
import { benchResponses } from "./bench-responses";
import { benchDPOMain } from "./bench-dpo";
import { BENCH_CONFIGS, engineFields, peakRssMiB } from "./bench-measure";

interface Options {
  config: string;
  steps: number;
  gen: number;
  maxNewTokens: number;
  genBatch: number;
  groupByLength?: boolean;
  schedule?: number;
  vsTorch?: boolean;
  torchDevice: string;
  tfjsPath?: boolean;
  kernels?: boolean;
  profile?: boolean;
  responses?: string;
  loraRank?: number;
  loraAlpha: number;
  recompute?: boolean;
  backend?: EngineChoice;
  batchSize: number;
  seed: number;
  data: string;
}




/** The trainer's schedule (trainModelSimple's own) for `epochs` epochs, as plain arrays: its train batches and evaluation batches. */
function scheduleEvents(trainLoader: DataLoader, valLoader: DataLoader, epochs: number): BenchEvent[] {
  const events: BenchEvent[] = [];
  const opts = { numEpochs: epochs, evalFreq: BOOK_EVAL_FREQ, evalIter: BOOK_EVAL_ITER };
  for (const event of trainSchedule(readArrays, trainLoader, valLoader, opts)) {
    if (event.kind !== "step") continue;
    events.push({ train: event.data });
    if (event.eval) events.push({ eval: [...event.eval.train, ...event.eval.val] });
  }
  return events;
}

async function main(): Promise<void> {
  if (process.argv.includes("--dpo")) return benchDPOMain(); // its own options: bench-dpo.ts
  const program = new Command()
    .name("bench")
    .description("Training and generation speed on this machine (optionally side by side with PyTorch)")
    .option("--config <name>", `model config: ${Object.keys(BENCH_CONFIGS).join(" | ")}`, "bench-tiny")
    .option("--steps <n>", "training steps to time (the first n batches of epoch 0)", parseIntOption("steps", 1), 5)
    .option("--gen <k>", "test prompts to generate for (0 = skip)", parseIntOption("gen", 0), 1)
    .option("--max-new-tokens <m>", "new tokens per prompt at most", parseIntOption("max-new-tokens", 1), BOOK_MAX_NEW_TOKENS)
    .option("--gen-batch <b>", "prompts per batch for batched generation", parseIntOption("gen-batch", 1), GENERATE_BATCH_SIZE)
    .option("--group-by-length", "length-grouped training batches (less padding)")
    .option(
      "--schedule <epochs>",
      `time the book's whole schedule for this many epochs (eval every ${BOOK_EVAL_FREQ} steps on ${BOOK_EVAL_ITER}+${BOOK_EVAL_ITER} batches) instead of --steps`,
      parseIntOption("schedule", 1),
    )
    .option("--lora-rank <r>", "train a LoRA adapter of this rank on every linear layer instead of every weight", parseIntOption("lora-rank", 1))
    .option("--lora-alpha <a>", "LoRA's alpha (the update is scaled by alpha / rank)", parseNumberOption("lora-alpha", 0), BOOK_LORA_ALPHA)
    .option("--recompute", "recompute each block's activations in the backward pass (default: on for LoRA on wasm)")
    .option("--no-recompute", "keep every activation for the backward pass")
    .option("--responses <dir>", "instead: the test set's responses with a fine-tuned model folder (finetune's model/), up to --max-new-tokens each, batches of --gen-batch; with --vs-torch against transformers")
    .option("--profile", "after the timed steps, one more step under tf.profile: time by kernel, and what is overhead")
    .option("--vs-torch", "also run the PyTorch and transformers reference ($COURSE_PYTHON, $COURSE_HF_PYTHON, .cache/venv or python3) on the same batches and prompts and print the ratios")
    .option("--torch-device <device>", "where the PyTorch reference runs: cpu, or cuda for the GPU beside ours", "cpu")
    .option("--kernels", "instead: the GPU path's matmul on GPT-2's shapes, every tile, in TFLOP/s (webgpu engine)")
    .option("--tfjs-path", "on webgpu, train with TF.js ops instead of the course's own WebGPU kernels (the plain path, to compare)")
    .option("--backend <name>", "engine: auto | tensorflow | webgpu | wasm | cpu (default: COURSE_BACKEND or auto)", parseBackend)
    .option("--batch-size <n>", "sequences per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--seed <n>", "model init and shuffle seed", parseIntOption("seed", 0), BOOK_SEED)
    .option("--data <file>", "instruction data file", DEFAULT_DATA_FILE)
    .parse();
  const opts = program.opts<Options>();
  const cfg = BENCH_CONFIGS[opts.config];
  if (cfg === undefined) {
    throw new ConfigError(`--config: unknown "${opts.config}"; choose one of ${Object.keys(BENCH_CONFIGS).join(", ")}`);
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const engine = await startEngine(opts.backend, true); // stderr: stdout is the JSON line
  if (opts.kernels) {
    const cost = await dispatchCost();
    say(`one dispatch, recorded, submitted and run (a trivial kernel): ${cost.tfjs_us} µs as a TF.js op, ${cost.runtime_us} µs on the course's runtime`);
    console.log(JSON.stringify({ impl: "tfjs", backend: engine.name, engine: engine.reason, dispatch: cost, kernels: await benchKernels(say) }));
    return;
  }
  if (opts.responses !== undefined) {
    const line = await benchResponses(opts.responses, { data: opts.data, maxNewTokens: opts.maxNewTokens, batchSize: opts.genBatch, vsTorch: Boolean(opts.vsTorch) }, say);
    console.log(JSON.stringify({ impl: "tfjs", tfjs: tf.version_core, backend: engine.name, engine: engine.reason, model_dir: opts.responses, ...line, peak_rss_mib: Math.round(peakRssMiB()) }));
    return;
  }

  // The same batches and prompts for us and for torch: plain token ids.
  const { train, val, test } = splitData(await loadInstructionData(opts.data), { source: opts.data });
  const loader = new DataLoader(new InstructionDataset(train), {
    batchSize: opts.batchSize,
    shuffle: true,
    dropLast: true,
    seed: opts.seed,
    collateOptions: { allowedMaxLength: cfg.contextLength },
    groupByLength: opts.groupByLength ?? false,
  });
  const valLoader = new DataLoader(new InstructionDataset(val), { batchSize: opts.batchSize, collateOptions: { allowedMaxLength: cfg.contextLength } });
  const events: BenchEvent[] = opts.schedule ? scheduleEvents(loader, valLoader, opts.schedule) : [...loader.arrayBatches(0)].slice(0, opts.steps).map((train) => ({ train }));
  const batches = events.flatMap((e) => (e.train ? [e.train] : []));
  const prompts = test.slice(0, opts.gen).map((entry) => encodeText(formatInput(entry)));

  const model = new GPTModel(cfg, { seed: opts.seed });
  const lora = opts.loraRank !== undefined ? model.applyLoRA({ rank: opts.loraRank, alpha: opts.loraAlpha, seed: opts.seed }) : null;
  if (lora) say(`LoRA rank ${lora.rank}, alpha ${lora.alpha}: ${model.numTrainableParams().toLocaleString("en-US")} trainable parameters`);
  model.recomputeActivations = opts.recompute ?? (lora !== null && engine.name === "wasm");
  if (model.recomputeActivations) say("activations: recomputed in the backward pass");
  const optimizer = createAdamW(model.trainableParams(), { lr: BOOK_LR, weightDecay: BOOK_WEIGHT_DECAY });
  // past wasm's heap the step runs out of memory (or hangs, threaded): skip it and say why
  const trainSkipped = trainingMemoryProblem(model.numParams(), engine.name, lora?.numParams());
  if (trainSkipped) say(`skipping training: ${trainSkipped}`);
  const timed = trainSkipped ? null : await benchTraining(model, optimizer, events, { schedule: Boolean(opts.schedule), path: opts.tfjsPath ? "tfjs" : "auto", profile: opts.profile }, say);
  const stepTimes = timed?.stepTimes ?? [];
  const i = stepTimes.length;
  // on the TF.js path, the profile is tf.profile's of one more step (the GPU path profiled its own, bench-kernels.ts)
  const profile = opts.profile && stepTimes.length > 0 && timed?.path === "tfjs" ? await profileOneStep(model, optimizer, batches[0], i + 1, say) : undefined;

  const gen = await benchGeneration(model, prompts, { maxNewTokens: opts.maxNewTokens, batchSize: opts.genBatch }, say);

  const ours: Record<string, unknown> = {
    ...engineFields(engine),
    config: opts.config,
    group_by_length: Boolean(opts.groupByLength),
    ...(lora ? { lora_rank: lora.rank, lora_alpha: lora.alpha } : {}),
    trainable_params: model.numTrainableParams(),
    recompute: model.recomputeActivations,
    steps: stepTimes.length,
    ...(trainSkipped ? { train_skipped: trainSkipped } : {}),
    ...(timed ? trainingFigures(timed) : {}),
    ...(timed && opts.schedule ? { schedule_epochs: opts.schedule, schedule_s: round(timed.scheduleSeconds), eval_s: round(timed.evalSeconds) } : {}),
    ...gen,
    ...(profile ? { profile } : {}),
    peak_rss_mib: Math.round(peakRssMiB()),
    ...(wasmHeapBytes() !== undefined ? { peak_heap_mib: Math.round((wasmHeapBytes() as number) / 2 ** 20) } : {}),
  };
  // free the weights and AdamW's moments before the reference starts beside this process (gpt2-medium's are 4.9 GB)
  optimizer.dispose();
  model.dispose();
  if (opts.vsTorch) {
    const torch = runTorch(cfg, opts, events, prompts, say);
    ours.torch = torch;
    if (torch.skipped === undefined) {
      const ratio = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" && b > 0 ? round(a / b) : null);
      ours.ratio = {
        train_tokens_per_s: ratio(ours.train_tokens_per_s, torch.train_tokens_per_s),
        step_s: ratio(ours.step_s, torch.step_s),
        ...(opts.schedule ? { schedule_s: ratio(ours.schedule_s, torch.schedule_s) } : {}),
        // generation against transformers' generate (KV cache), one prompt and batched; and against the book's loop
        gen_tokens_per_s: ratio(ours.gen_tokens_per_s, torch.hf_gen_tokens_per_s),
        gen_batch_tokens_per_s: ratio(ours.gen_batch_tokens_per_s, torch.hf_gen_batch_tokens_per_s),
        gen_vs_book_loop: ratio(ours.gen_tokens_per_s, torch.gen_tokens_per_s),
        peak_rss_mib: ratio(ours.peak_rss_mib, torch.peak_rss_mib),
      };
    }
  }
  console.log(JSON.stringify(ours));
}

/** Run the PyTorch reference on the same token ids; its JSON line, or `{ skipped: why }`. */
function runTorch(cfg: GPTConfig, opts: Options, events: BenchEvent[], prompts: number[][], say: (line: string) => void): Record<string, unknown> {
  // eos_id null: the book's loop makes max_new_tokens too; pad_id pads transformers' batches
  const job = {
    ...{ config: cfg, lora: opts.loraRank !== undefined ? { rank: opts.loraRank, alpha: opts.loraAlpha } : null, seed: opts.seed, lr: BOOK_LR, weight_decay: BOOK_WEIGHT_DECAY, events, prompts, device: opts.torchDevice },
    ...{ max_new_tokens: opts.maxNewTokens, eos_id: null, pad_id: END_OF_TEXT, gen_batch: opts.genBatch },
  };
  const steps = events.filter((e) => e.train).length;
  return runTorchBench(job, `the same ${steps} batches, ${events.length - steps} evaluations and ${prompts.length} prompts`, say);
}

if (require.main === module) runCli(main);
