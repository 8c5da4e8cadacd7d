/**
 * What the three commands (finetune, evaluate, generate) share: error handling,
 * number parsing for options, and choosing the model to load.
 */
import * as fs from "fs";
import * as path from "path";
import { InvalidArgumentError } from "commander";
import { ConfigError, CourseError } from "../errors";
import { ENGINE_CHOICES, EngineChoice, initEngine } from "../engine";
import { GPTConfig, resolveModelConfig, validateConfig, TINY } from "../model/config";
import { GPTModel } from "../model/gpt";
import { loadGPT2Directory } from "../model/weights";
import { ensurePretrainedWeights, hasPretrainedWeights, manualDownloadInstructions } from "../model/hub";

/** Where pretrained GPT-2 weights are cached: $COURSE_CACHE_DIR, else .cache/gpt2 in the repository. */
export const DEFAULT_CACHE_DIR = process.env.COURSE_CACHE_DIR ?? path.resolve(__dirname, "..", "..", ".cache", "gpt2");

/** The pretrained model `--model auto` prefers, as the book (`CHOOSE_MODEL = "gpt2-medium (355M)"`). */
export const AUTO_PRETRAINED = "gpt2-medium (355M)";

/**
 * Run a command's main function: a CourseError becomes `error: <message>` and exit
 * code 1 (no stack trace: it is the user's input, not a bug); anything else is a bug
 * and keeps its stack.
 */
export function runCli(main: () => Promise<void>): void {
  main().then(
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      if (err instanceof CourseError) {
        console.error(`error: ${err.message}`);
        process.exit(1);
      }
      console.error(err);
      process.exit(2);
    },
  );
}

/** commander parsers that reject bad numbers with a message naming the option. */
export const parseIntOption = (min: number) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got "${value}"`);
  return n;
};
export const parseNumberOption = (min: number) => (value: string): number => {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n) || n < min) throw new InvalidArgumentError(`expected a number >= ${min}, got "${value}"`);
  return n;
};
export const parseBackend = (value: string): EngineChoice => {
  if (!(ENGINE_CHOICES as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${ENGINE_CHOICES.join(", ")}`);
  }
  return value as EngineChoice;
};

/** `await initEngine()`, with its one line on stdout (finetune) or stderr (commands whose stdout is the answer). */
export async function startEngine(backend: EngineChoice | undefined, toStderr = false): Promise<void> {
  await initEngine({ backend, log: (line) => (toStderr ? console.error(line) : console.log(line)) });
}

/**
 * A model config from a JSON file: the fields given override the "tiny" config.
 * This is how tests (and the curious) train a very small model from the command line:
 * `--model path/to/config.json`, e.g. `{ "embDim": 8, "nLayers": 1, "nHeads": 2, "contextLength": 256 }`.
 */
export function readConfigFile(file: string): GPTConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(`${file}: not a readable JSON model config (${(err as Error).message.split("\n")[0]})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${file}: a model config must be a JSON object with GPTConfig fields`);
  }
  const known = Object.keys(TINY);
  for (const key of Object.keys(parsed)) {
    if (!known.includes(key)) throw new ConfigError(`${file}: unknown model config field "${key}" (known: ${known.join(", ")})`);
  }
  const cfg = { ...TINY, ...(parsed as Partial<GPTConfig>) };
  validateConfig(cfg);
  return cfg;
}

export interface ChosenModel {
  model: GPTModel;
  /** e.g. "gpt2-medium (355M), pretrained" or "tiny, random init" */
  description: string;
  pretrained: boolean;
}

/** Shown when `--model auto` falls back to the small config: the run will not look like the book's. */
export function fallbackBanner(why: string): string {
  const lines = [
    `NO PRETRAINED WEIGHTS: ${why}`,
    `Fine-tuning the small "tiny" config from RANDOM weights instead.`,
    `It learns the response format, not the answers; the losses are not the book's.`,
    `For the book's run, install ${AUTO_PRETRAINED} (see the README) and run again.`,
  ];
  const width = Math.max(...lines.map((l) => l.length));
  const bar = "#".repeat(width + 4);
  return [bar, ...lines.map((l) => `# ${l.padEnd(width)} #`), bar].join("\n");
}

/**
 * The model for `finetune`:
 *   --weights DIR        a Hugging Face GPT-2 folder (e.g. a previous run's model);
 *   --model gpt2-*       pretrained GPT-2, downloaded into the cache if needed;
 *   --model tiny         the small offline config, random init;
 *   --model FILE.json    a custom config (fields over "tiny"), random init (used by the tests);
 *   --model auto         gpt2-medium when cached or downloadable, else "tiny" with a banner.
 * Offline downloads are not even tried when HF_HUB_OFFLINE=1.
 */
export async function chooseModel(opts: { model: string; weights?: string; seed: number; log: (line: string) => void }): Promise<ChosenModel> {
  if (opts.weights !== undefined) {
    const model = await loadGPT2Directory(opts.weights, { seed: opts.seed });
    return { model, description: `weights from ${opts.weights}`, pretrained: true };
  }
  const name = opts.model;
  if (name.toLowerCase().endsWith(".json")) {
    const cfg = readConfigFile(name);
    return { model: new GPTModel(cfg, { seed: opts.seed }), description: `custom config ${name}, random init`, pretrained: false };
  }
  const offline = process.env.HF_HUB_OFFLINE === "1";
  if (name === "auto") {
    let why: string;
    if (hasPretrainedWeights(AUTO_PRETRAINED, DEFAULT_CACHE_DIR)) {
      return loadPretrained(AUTO_PRETRAINED, opts);
    } else if (offline) {
      why = `${AUTO_PRETRAINED} is not in ${DEFAULT_CACHE_DIR} and HF_HUB_OFFLINE=1`;
    } else {
      try {
        return await loadPretrained(AUTO_PRETRAINED, opts);
      } catch (err) {
        if (!(err instanceof CourseError)) throw err;
        why = err.message;
      }
    }
    opts.log(fallbackBanner(why));
    return { model: new GPTModel(TINY, { seed: opts.seed }), description: "tiny, random init (fallback)", pretrained: false };
  }
  const cfg = resolveModelConfig(name); // throws a ConfigError listing the names
  if (name.trim().toLowerCase() === "tiny") {
    return { model: new GPTModel(cfg, { seed: opts.seed }), description: "tiny, random init", pretrained: false };
  }
  if (offline && !hasPretrainedWeights(name, DEFAULT_CACHE_DIR)) {
    throw new ConfigError(`HF_HUB_OFFLINE=1 and ${name} is not cached; ${manualDownloadInstructions(name, DEFAULT_CACHE_DIR)}`);
  }
  return loadPretrained(name, opts);
}

async function loadPretrained(name: string, opts: { seed: number; log: (line: string) => void }): Promise<ChosenModel> {
  let lastShown = 0;
  const dir = await ensurePretrainedWeights(name, DEFAULT_CACHE_DIR, {
    onProgress: (p) => {
      const now = Date.now();
      if (now - lastShown < 2000 && p.received !== p.total) return;
      lastShown = now;
      const mb = (x: number) => (x / 2 ** 20).toFixed(0);
      opts.log(`download ${p.file}: ${mb(p.received)}${p.total ? ` / ${mb(p.total)}` : ""} MB`);
    },
  });
  const model = await loadGPT2Directory(dir, { seed: opts.seed });
  return { model, description: `${name}, pretrained (${dir})`, pretrained: true };
}
