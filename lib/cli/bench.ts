/**
 * `npm run bench -- --config bench-tiny|gpt2-small [--steps N] [--gen K] [--max-new-tokens M]
 *                   [--group-by-length] [--vs-torch] [--backend auto|wasm|cpu|tensorflow]`
 *
 * A benchmark, not a test: from random init (seed 123), the first N training steps of the
 * seeded train loader (batch 8, AdamW lr 5e-5, weight decay 0.1: the book's fine-tuning),
 * then greedy generation for the first K test prompts (up to M new tokens or <|endoftext|>).
 * Prints one JSON line: backend, step_s (median), train_tokens_per_s (padded tokens, as
 * PyTorch sees them), real_tokens_per_s (targets that are not -100), gen_tokens_per_s,
 * peak_rss_mib. Progress goes to stderr.
 *
 * --vs-torch also runs test/reference/torch_bench.py (Debian's /usr/bin/python3 with its
 * torch) on the very same token batches and prompts, and adds its figures and the ratios
 * (ours / torch's) to the line; where torch is absent it says so and still prints ours.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as tf from "@tensorflow/tfjs";
import { Command } from "commander";
import { CourseError, ConfigError } from "../errors";
import { EngineChoice, initEngine } from "../engine";
import { DEFAULT_DATA_FILE, loadInstructionData } from "../data/instruction-data";
import { splitData } from "../data/split";
import { InstructionDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { formatInput } from "../data/prompt";
import { encodeText, END_OF_TEXT } from "../data/tokenizer";
import { GPTConfig, GPT2_SMALL, TINY } from "../model/config";
import { GPTModel } from "../model/gpt";
import { IGNORE_INDEX } from "../train/loss";
import { AdamW } from "../train/adamw";
import { trainStep } from "../train/train";
import { generateIds } from "../generate";
import { trainingMemoryProblem } from "../engine/memory";

/** The benchmark's configs: issue 4's small one and GPT-2 small, both without dropout. */
const BENCH_CONFIGS: Record<string, GPTConfig> = {
  "bench-tiny": { ...TINY, dropRate: 0 },
  "gpt2-small": { ...GPT2_SMALL, dropRate: 0 },
};
const TORCH_PYTHON = "/usr/bin/python3";
const TORCH_SCRIPT = path.resolve(__dirname, "..", "..", "test", "reference", "torch_bench.py");

interface Options {
  config: string;
  steps: number;
  gen: number;
  maxNewTokens: number;
  groupByLength?: boolean;
  vsTorch?: boolean;
  backend?: EngineChoice;
  batchSize: number;
  seed: number;
  data: string;
}

function integerAtLeast(name: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new CourseError(`--${name} must be an integer >= ${min}, got "${value}"`);
    return n;
  };
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The kernel's high-water mark of this process's resident memory (all threads), in MiB. */
function peakRssMiB(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    if (m) return Number(m[1]) / 1024;
  } catch {
    // not Linux: fall back to the current RSS
  }
  return process.memoryUsage().rss / 2 ** 20;
}

const round = (x: number, digits = 3) => Number(x.toPrecision(digits + 1));

async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("bench")
    .description("Training and generation speed on this machine (optionally side by side with PyTorch)")
    .option("--config <name>", `model config: ${Object.keys(BENCH_CONFIGS).join(" | ")}`, "bench-tiny")
    .option("--steps <n>", "training steps to time (the first n batches of epoch 0)", integerAtLeast("steps", 1), 5)
    .option("--gen <k>", "test prompts to generate for (0 = skip)", integerAtLeast("gen", 0), 1)
    .option("--max-new-tokens <m>", "new tokens per prompt at most", integerAtLeast("max-new-tokens", 1), 256)
    .option("--group-by-length", "length-grouped training batches (less padding)")
    .option("--vs-torch", "also run the PyTorch reference on the same batches and print the ratios")
    .option("--backend <name>", "engine: auto | tensorflow | wasm | cpu (default: COURSE_BACKEND or auto)")
    .option("--batch-size <n>", "sequences per batch", integerAtLeast("batch-size", 1), 8)
    .option("--seed <n>", "model init and shuffle seed", integerAtLeast("seed", 0), 123)
    .option("--data <file>", "instruction data file", DEFAULT_DATA_FILE)
    .parse(argv);
  const opts = program.opts<Options>();
  const cfg = BENCH_CONFIGS[opts.config];
  if (cfg === undefined) {
    throw new ConfigError(`--config: unknown "${opts.config}"; choose one of ${Object.keys(BENCH_CONFIGS).join(", ")}`);
  }
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const engine = await initEngine({ backend: opts.backend, log: say });

  // The same batches and prompts for us and for torch: plain token ids.
  const { train, test } = splitData(await loadInstructionData(opts.data), { source: opts.data });
  const loader = new DataLoader(new InstructionDataset(train), {
    batchSize: opts.batchSize,
    shuffle: true,
    dropLast: true,
    seed: opts.seed,
    collateOptions: { allowedMaxLength: cfg.contextLength },
    groupByLength: opts.groupByLength ?? false,
  });
  const batches = [...loader.arrayBatches(0)].slice(0, opts.steps);
  const prompts = test.slice(0, opts.gen).map((entry) => encodeText(formatInput(entry)));

  const model = new GPTModel(cfg, { seed: opts.seed });
  const optimizer = new AdamW(model.params, { lr: 5e-5, weightDecay: 0.1 });
  const stepTimes: number[] = [];
  let padded = 0;
  let real = 0;
  // past wasm's heap the step runs out of memory (or hangs, threaded): skip it and say why
  const trainSkipped = trainingMemoryProblem(model.numParams(), engine.name);
  if (trainSkipped) say(`skipping training: ${trainSkipped}`);
  (trainSkipped ? [] : batches).forEach((batch, i) => {
    const t0 = performance.now();
    const inputs = tf.tensor2d(batch.inputs, undefined, "int32"); // (B, T)
    const targets = tf.tensor2d(batch.targets, undefined, "int32"); // (B, T)
    const loss = trainStep(model, optimizer, inputs, targets, i + 1);
    tf.dispose([inputs, targets]);
    const dt = (performance.now() - t0) / 1000;
    stepTimes.push(dt);
    const shape = [batch.inputs.length, batch.inputs[0].length];
    padded += shape[0] * shape[1];
    real += batch.targets.flat().filter((t) => t !== IGNORE_INDEX).length;
    say(`step ${i + 1}/${batches.length}: (${shape.join(", ")}) loss ${loss.toFixed(3)} in ${dt.toFixed(2)} s`);
  });
  const trainSeconds = stepTimes.reduce((a, b) => a + b, 0);

  let genTokens = 0;
  const g0 = performance.now();
  for (const ids of prompts) {
    const out = generateIds(model, [ids], { maxNewTokens: opts.maxNewTokens, eosId: END_OF_TEXT, contextSize: cfg.contextLength });
    genTokens += out[0].length - ids.length;
  }
  const genSeconds = (performance.now() - g0) / 1000;
  if (prompts.length > 0) say(`generated ${genTokens} tokens in ${genSeconds.toFixed(2)} s`);

  const ours: Record<string, unknown> = {
    impl: "tfjs",
    backend: engine.name,
    engine: engine.reason,
    config: opts.config,
    group_by_length: Boolean(opts.groupByLength),
    steps: stepTimes.length,
    ...(trainSkipped ? { train_skipped: trainSkipped } : {}),
    step_s: stepTimes.length ? round(median(stepTimes)) : null,
    train_tokens_per_s: stepTimes.length ? round(padded / trainSeconds) : null,
    real_tokens_per_s: stepTimes.length ? round(real / trainSeconds) : null,
    gen_tokens: genTokens,
    gen_tokens_per_s: prompts.length > 0 ? round(genTokens / genSeconds) : null,
    peak_rss_mib: Math.round(peakRssMiB()),
  };
  model.dispose();
  if (opts.vsTorch) {
    const torch = runTorch(cfg, opts, batches, prompts, say);
    ours.torch = torch;
    if (torch.skipped === undefined) {
      const ratio = (a: unknown, b: unknown) => (typeof a === "number" && typeof b === "number" && b > 0 ? round(a / b) : null);
      ours.ratio = {
        train_tokens_per_s: ratio(ours.train_tokens_per_s, torch.train_tokens_per_s),
        step_s: ratio(ours.step_s, torch.step_s),
        gen_tokens_per_s: ratio(ours.gen_tokens_per_s, torch.gen_tokens_per_s),
        peak_rss_mib: ratio(ours.peak_rss_mib, torch.peak_rss_mib),
      };
    }
  }
  console.log(JSON.stringify(ours));
}

/** Run the PyTorch reference on the same token ids; its JSON line, or `{ skipped: why }`. */
function runTorch(
  cfg: GPTConfig,
  opts: Options,
  batches: { inputs: number[][]; targets: number[][] }[],
  prompts: number[][],
  say: (line: string) => void,
): Record<string, unknown> {
  if (!fs.existsSync(TORCH_PYTHON)) return { skipped: `${TORCH_PYTHON} not found` };
  const probe = spawnSync(TORCH_PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return { skipped: "torch is not installed for /usr/bin/python3" };
  const file = path.join(os.tmpdir(), `course-bench-${process.pid}.json`);
  const job = { config: cfg, seed: opts.seed, lr: 5e-5, weight_decay: 0.1, batches, prompts, max_new_tokens: opts.maxNewTokens, eos_id: END_OF_TEXT };
  fs.writeFileSync(file, JSON.stringify(job));
  say(`torch: running ${path.relative(process.cwd(), TORCH_SCRIPT)} on the same ${batches.length} batches and ${prompts.length} prompts`);
  try {
    const run = spawnSync(TORCH_PYTHON, [TORCH_SCRIPT, file, "--threads", String(os.cpus().length)], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"], // its progress lines go straight to our stderr
      maxBuffer: 16 * 2 ** 20,
    });
    const last = run.stdout.trim().split("\n").pop() ?? "";
    if (run.status !== 0 || !last.startsWith("{")) return { skipped: `torch_bench.py failed (exit ${run.status})` };
    return JSON.parse(last) as Record<string, unknown>;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

main(process.argv).catch((err: unknown) => {
  if (err instanceof CourseError) {
    console.error(`error: ${err.message}`);
    process.exit(1);
  }
  throw err;
});
