/**
 * `npm run bench -- --dpo [--config bench-tiny|gpt2-small|gpt2-medium] [--steps N] [--lora-rank R] [--vs-torch] [--backend …]`
 *
 * The DPO step (ch07/04) timed, not tested: from random init (the book's seed), the first N batches of the
 * seeded, shuffled preference training loader (batch 8), each one DPO step — the reference's
 * log-probabilities of chosen and rejected, the policy's with gradients, the loss (β 0.1), an AdamW step
 * (lr 5e-6, weight decay 0.01: the book's DPO settings). The reference starts equal to the policy, as in the
 * book, so the first step's loss is ln 2 = 0.693 on both sides whatever the weights.
 *
 * Full DPO (the default): the reference is a second, frozen copy of the model. With --lora-rank R: the
 * policy trains a LoRA adapter and the reference is the same weights with the adapter switched off (no
 * second copy). Prints one JSON line: step_s (median), train_tokens_per_s (chosen + rejected tokens with
 * padding, as the book's code feeds them to each model), peak_rss_mib (and peak_heap_mib, the wasm heap),
 * trainable_params, the reference, the first and last losses. Progress goes to stderr.
 *
 * --vs-torch also runs test/reference/torch_dpo_bench.py on the very same batches: the book's DPO step
 * (compute_dpo_loss_batch: policy and reference each run chosen and rejected separately, full-vocabulary
 * log-softmax; torch.optim.AdamW) on reference_model.py's GPT, the reference a frozen deep copy (also for
 * LoRA: the book keeps two models), and adds its figures and the ratios (ours / theirs).
 */
import { Command } from "commander";
import { BOOK_BATCH_SIZE, BOOK_DPO_BETA, BOOK_DPO_LR, BOOK_DPO_WEIGHT_DECAY, BOOK_LORA_ALPHA, BOOK_SEED } from "../core/book";
import { ConfigError } from "../core/errors";
import type { EngineChoice } from "../engine";
import { wasmHeapBytes } from "../engine/memory";
import { DEFAULT_PREFERENCE_FILE, loadPreferenceData } from "../data/preference-data";
import { PreferenceDataset } from "../data/preference-dataset";
import { PreferenceLoader } from "../data/preference-loader";
import type { PreferenceBatch } from "../data/preference-collate";
import { splitData } from "../data/split";
import { GPTModel } from "../model/gpt";
import { AdamW } from "../train/adamw";
import { dpoMemoryProblem } from "../train/dpo-memory";
import { DPOReference, referenceFor } from "../train/dpo-reference";
import { dpoTrainStep } from "../train/dpo-train";
import { parseBackend, parseIntOption, parseNumberOption, round, startEngine } from "./common";
import { BENCH_CONFIGS, engineFields, median, peakRssMiB } from "./bench-measure";
import { runReferenceScript } from "./bench-torch";

interface Options {
  config: string;
  steps: number;
  batchSize: number;
  beta: number;
  loraRank?: number;
  loraAlpha: number;
  recompute?: boolean;
  vsTorch?: boolean;
  backend?: EngineChoice;
  seed: number;
  data: string;
}

function program(): Command {
  return new Command("bench --dpo")
    .description("DPO step speed and peak memory on this machine, full (a second, frozen copy as the reference) or LoRA (the adapter switched off); optionally against the book's PyTorch code")
    .option("--dpo", "this benchmark (bench.ts hands over on it)")
    .option("--config <name>", `model config: ${Object.keys(BENCH_CONFIGS).join(" | ")}`, "bench-tiny")
    .option("--steps <n>", "DPO steps to time (the first n batches of epoch 0)", parseIntOption("steps", 1), 3)
    .option("--batch-size <n>", "preference entries per batch", parseIntOption("batch-size", 1), BOOK_BATCH_SIZE)
    .option("--beta <b>", "β of the DPO loss", parseNumberOption("beta", 0), BOOK_DPO_BETA)
    .option("--lora-rank <r>", "LoRA DPO: train an adapter of this rank; the reference is the policy with it switched off", parseIntOption("lora-rank", 1))
    .option("--lora-alpha <a>", "LoRA's alpha (the update is scaled by alpha / rank)", parseNumberOption("lora-alpha", 0), BOOK_LORA_ALPHA)
    .option("--recompute", "recompute each block's activations in the backward pass (default: on for LoRA on wasm)")
    .option("--no-recompute", "keep every activation for the backward pass")
    .option("--vs-torch", "also run the book's DPO step on PyTorch (test/reference/torch_dpo_bench.py) on the same batches and print the ratios")
    .option("--backend <name>", "engine: auto | tensorflow | webgpu | wasm | cpu (default: COURSE_BACKEND or auto)", parseBackend)
    .option("--seed <n>", "model init and shuffle seed", parseIntOption("seed", 0), BOOK_SEED)
    .option("--data <file>", "preference data file", DEFAULT_PREFERENCE_FILE);
}

/** `npm run bench -- --dpo …`: see the file comment. `argv` as process.argv. */
export async function benchDPOMain(argv = process.argv): Promise<void> {
  const opts = program().parse(argv).opts<Options>();
  const cfg = BENCH_CONFIGS[opts.config];
  if (cfg === undefined) throw new ConfigError(`--config: unknown "${opts.config}"; choose one of ${Object.keys(BENCH_CONFIGS).join(", ")}`);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const engine = await startEngine(opts.backend, true); // stderr: stdout is the JSON line

  const { train } = splitData(await loadPreferenceData(opts.data), { source: opts.data });
  const loader = new PreferenceLoader(new PreferenceDataset(train), {
    ...{ batchSize: opts.batchSize, shuffle: true, dropLast: true, seed: opts.seed },
    collateOptions: { allowedMaxLength: cfg.contextLength },
  });
  const batches = [...loader.batches(0)].slice(0, opts.steps);

  const policy = new GPTModel(cfg, { seed: opts.seed });
  if (opts.loraRank !== undefined) {
    const adapter = policy.applyLoRA({ rank: opts.loraRank, alpha: opts.loraAlpha, seed: opts.seed });
    say(`LoRA rank ${adapter.rank}, alpha ${adapter.alpha}: ${policy.numTrainableParams().toLocaleString("en-US")} trainable parameters; the reference is the adapter switched off`);
  }
  // asked before the second copy is built (the policy stands in for its size): past wasm's heap, say why and time nothing
  const skipped = dpoMemoryProblem(policy, policy.lora ? "adapter-off" : policy, engine.name);
  if (skipped) say(`skipping training: ${skipped}`);
  let reference: DPOReference = "adapter-off";
  if (policy.lora) reference = referenceFor(policy);
  else if (!skipped) {
    reference = referenceFor(policy, new GPTModel(cfg, { seed: opts.seed })); // the same seed: the same weights
    say(`full DPO: ${policy.numTrainableParams().toLocaleString("en-US")} trainable parameters; the reference is a second, frozen copy`);
  }
  policy.recomputeActivations = opts.recompute ?? (policy.lora !== null && engine.name === "wasm");
  if (policy.recomputeActivations) say("activations: recomputed in the backward pass");
  const optimizer = new AdamW(policy.trainableParams(), { lr: BOOK_DPO_LR, weightDecay: BOOK_DPO_WEIGHT_DECAY });
  const times: number[] = [];
  const losses: number[] = [];
  let tokens = 0;
  for (const [i, batch] of (skipped ? [] : batches).entries()) {
    const t0 = performance.now();
    const loss = await dpoTrainStep(policy, reference, optimizer, batch, opts.beta, i + 1);
    const dt = (performance.now() - t0) / 1000;
    times.push(dt);
    losses.push(loss);
    const shape = [batch.chosen.length, batch.chosen[0].length];
    tokens += 2 * shape[0] * shape[1];
    say(`DPO step ${i + 1}/${batches.length}: chosen and rejected (${shape.join(", ")}) each, loss ${loss.toFixed(4)} in ${dt.toFixed(2)} s`);
  }
  const seconds = times.reduce((a, b) => a + b, 0);
  const ours: Record<string, unknown> = {
    ...engineFields(engine),
    bench: "dpo",
    config: opts.config,
    ...(policy.lora ? { lora_rank: policy.lora.rank, lora_alpha: policy.lora.alpha } : {}),
    reference: policy.lora ? "adapter-off" : "copy",
    trainable_params: policy.numTrainableParams(),
    recompute: policy.recomputeActivations,
    batch_size: opts.batchSize,
    beta: opts.beta,
    steps: times.length,
    ...(skipped ? { train_skipped: skipped } : {}),
    step_s: times.length ? round(median(times)) : null,
    train_tokens_per_s: times.length ? round(tokens / seconds) : null,
    first_loss: losses.length ? round(losses[0], 5) : null,
    last_loss: losses.length ? round(losses[losses.length - 1], 5) : null,
    peak_rss_mib: Math.round(peakRssMiB()),
    ...(wasmHeapBytes() !== undefined ? { peak_heap_mib: Math.round((wasmHeapBytes() as number) / 2 ** 20) } : {}),
  };
  // free both models and AdamW's moments before the reference starts beside this process
  optimizer.dispose();
  policy.dispose();
  if (reference !== "adapter-off") reference.dispose();
  if (opts.vsTorch) {
    const torch = runTorchDPO(opts, batches, say);
    ours.torch = torch;
    if (torch.skipped === undefined) {
      const ratio = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" && b > 0 ? round(a / b) : null);
      ours.ratio = {
        step_s: ratio(ours.step_s, torch.step_s),
        train_tokens_per_s: ratio(ours.train_tokens_per_s, torch.train_tokens_per_s),
        peak_rss_mib: ratio(ours.peak_rss_mib, torch.peak_rss_mib),
      };
    }
  }
  console.log(JSON.stringify(ours));
}

/** The book's DPO step on torch over the same batches; its JSON line, or `{ skipped: why }`. */
function runTorchDPO(opts: Options, batches: PreferenceBatch[], say: (line: string) => void): Record<string, unknown> {
  const job = {
    config: BENCH_CONFIGS[opts.config],
    lora: opts.loraRank !== undefined ? { rank: opts.loraRank, alpha: opts.loraAlpha } : null,
    ...{ seed: opts.seed, lr: BOOK_DPO_LR, weight_decay: BOOK_DPO_WEIGHT_DECAY, beta: opts.beta },
    batches: batches.map((b) => ({ chosen: b.chosen, rejected: b.rejected, chosen_mask: b.chosenMask, rejected_mask: b.rejectedMask })),
  };
  return runReferenceScript("torch_dpo_bench.py", job, `the same ${batches.length} preference batches`, say);
}
