/**
 * Choosing the model to fine-tune, as the book's `CHOOSE_MODEL = "gpt2-medium (355M)"`
 * (section 7.5), with one addition: a course that must also run offline.
 *
 * `chooseModel({ model: "auto" })` takes pretrained gpt2-medium when its weights are in the
 * cache or can be downloaded, and otherwise falls back to the small "tiny" config with
 * random weights, saying so in a banner nobody can miss: a random model fine-tuned for two
 * epochs learns the shape of a response, not the answers, and a reader comparing with the
 * book must know which of the two runs they are looking at.
 *
 * Deciding "offline" must be quick (a notebook cell should not hang for a minute on a
 * machine without network), so the Hub is probed with one HEAD request and a short timeout
 * before any download starts. `COURSE_OFFLINE=1` (or Hugging Face's own `HF_HUB_OFFLINE=1`)
 * skips the network altogether: the tests and CI set it, so they never depend on it.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { BOOK_SEED } from "../core/book";
import { ConfigError, CourseError, WeightsError } from "../core/errors";
import { GPTConfig, MODEL_CONFIGS, TINY, resolveModelConfig, validateConfig } from "../model/config";
import { GPTModel, countParams } from "../model/gpt";
import {
  PRETRAINED_SOURCES, ensurePretrainedWeights, hasPretrainedWeights, hubEndpoint, manualDownloadInstructions,
  pretrainedDir, resolvePretrainedName,
} from "./hub";
import { box } from "./banner";
import { CONFIG_FILE } from "../weights/config-file";
import { loadGPT2Directory } from "../weights/gpt2-directory";

/** The pretrained model "auto" prefers: the book's choice for chapter 7. */
export const AUTO_MODEL = "gpt2-medium (355M)";

/** Where pretrained weights are cached: $COURSE_CACHE_DIR, else `.cache/gpt2` at the repository root. */
export const DEFAULT_WEIGHTS_CACHE_DIR = process.env.COURSE_CACHE_DIR ?? path.resolve(__dirname, "..", "..", ".cache", "gpt2");

/** How long the Hub may take to answer one HEAD request before we call the machine offline. */
export const HUB_PROBE_TIMEOUT_MS = 3000;

export interface ChooseModelOptions {
  /** "auto" (default), a name of MODEL_CONFIGS or a short alias ("gpt2-medium", "tiny"), or a JSON file of GPTConfig fields over "tiny" */
  model?: string;
  /** a Hugging Face GPT-2 folder (config.json + model.safetensors) to load instead; wins over `model` */
  weightsDir?: string;
  /** pretrained weights cache; default DEFAULT_WEIGHTS_CACHE_DIR */
  cacheDir?: string;
  /** seeds random init and dropout (default BOOK_SEED, the book's seed) */
  seed?: number;
  /** dropout for training (default 0.0, as in chapter 7) */
  dropRate?: number;
  /** where the banner and download progress go (default console.log) */
  log?: (line: string) => void;
  /** the Hub's address (default hubEndpoint(): $HF_ENDPOINT or huggingface.co); tests point it at a local server */
  endpoint?: string;
  /** time allowed for the reachability probe (default HUB_PROBE_TIMEOUT_MS) */
  probeTimeoutMs?: number;
}

export interface ChosenModel {
  model: GPTModel;
  /** the config's name: "gpt2-medium (355M)", "tiny", "custom (file.json)", or the folder's name */
  name: string;
  /** true when the weights came from a checkpoint (GPT-2 or a saved run), false for random init */
  pretrained: boolean;
  /** the NOT PRETRAINED warning when "auto" fell back or a random model was asked for; null otherwise */
  banner: string | null;
  /** where the weights came from: a folder, or "random init (seed N)" */
  source: string;
}

/** Why not to touch the network (COURSE_OFFLINE=1 or HF_HUB_OFFLINE=1 is set), or null. */
export function offlineForced(): string | null {
  for (const v of ["COURSE_OFFLINE", "HF_HUB_OFFLINE"]) {
    const x = process.env[v];
    if (x !== undefined && x !== "" && x !== "0" && x.toLowerCase() !== "false") return `${v}=${x} is set`;
  }
  return null;
}

/**
 * One HEAD request for the model's config.json, with a timeout: null when the Hub answers
 * (any HTTP status below 500 counts: the server is there), else why not, in a few words.
 */
export async function probeHub(name: string, opts: { endpoint?: string; timeoutMs?: number } = {}): Promise<string | null> {
  const endpoint = (opts.endpoint ?? hubEndpoint()).replace(/\/+$/, "");
  const url = `${endpoint}/${PRETRAINED_SOURCES[resolvePretrainedName(name)].repo}/resolve/main/${CONFIG_FILE}`;
  const timeoutMs = opts.timeoutMs ?? HUB_PROBE_TIMEOUT_MS;
  const host = new URL(url).host;
  try {
    const res = await fetch(url, { method: "HEAD", redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel();
    return res.status >= 500 ? `${host} answered HTTP ${res.status}` : null;
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === "TimeoutError" || e.name === "AbortError") return `${host} did not answer within ${timeoutMs / 1000} s`;
    return `cannot reach ${host} (${e.cause?.code ?? e.cause?.message ?? e.message})`;
  }
}

/** The banner for "auto" without GPT-2: what this model is, why, what it means, how to get the real one. */
export function fallbackBanner(why: string, cacheDir: string, model = AUTO_MODEL): string {
  return box([
    `NOT PRETRAINED: this is the small "tiny" config (${(countParams(TINY) / 1e6).toFixed(1)}M parameters) with RANDOM weights, not GPT-2.`,
    `Why: ${model} is not in the cache (${path.resolve(pretrainedDir(model, cacheDir))}) and cannot be downloaded: ${why}.`,
    "What it means: an untrained model answers with random tokens, and fine-tuning it for a few epochs teaches it " +
      "the shape of a response, not the answers. The losses and responses are not the book's.",
    `To get the real weights: run this once with internet access (they download into the cache), or ${manualDownloadInstructions(model, cacheDir)}`,
  ]);
}

/** The banner for a random model asked for by name (shorter: nothing failed). */
function randomInitBanner(name: string): string {
  return box([`NOT PRETRAINED: "${name}" from RANDOM weights (no checkpoint exists for it); its answers mean nothing until it is trained.`]);
}

/** A JSON file of GPTConfig fields over the "tiny" config (how tests train a very small model). */
function readConfigFile(file: string): GPTConfig {
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

/** True when `name` is one of the GPT-2 sizes with a checkpoint on the Hub. */
function hasCheckpoint(name: string): boolean {
  try {
    resolvePretrainedName(name);
    return true;
  } catch {
    return false;
  }
}

/**
 * The model to fine-tune:
 *   weightsDir            that Hugging Face GPT-2 folder (e.g. a previous run's model);
 *   model "gpt2-*"        pretrained GPT-2 from the cache, downloaded there if missing (an error offline);
 *   model "tiny"          the small offline config, random init;
 *   model "x.json"        GPTConfig fields over "tiny", random init;
 *   model "auto"          gpt2-medium when cached or downloadable, else "tiny" with the banner.
 * The banner (when there is one) is also written to `log`.
 */
export async function chooseModel(opts: ChooseModelOptions = {}): Promise<ChosenModel> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const seed = opts.seed ?? BOOK_SEED;
  const cacheDir = opts.cacheDir ?? DEFAULT_WEIGHTS_CACHE_DIR;
  const load = { seed, dropRate: opts.dropRate };
  const random = (cfg: GPTConfig, name: string, banner: string | null): ChosenModel => {
    const model = new GPTModel({ ...cfg, dropRate: opts.dropRate ?? cfg.dropRate }, { seed });
    if (banner !== null) log(banner);
    return { model, name, pretrained: false, banner, source: `random init (seed ${seed})` };
  };

  if (opts.weightsDir !== undefined) {
    const dir = path.resolve(opts.weightsDir);
    const model = await loadGPT2Directory(dir, load);
    return { model, name: path.basename(dir), pretrained: true, banner: null, source: dir };
  }
  const wanted = (opts.model ?? "auto").trim();
  if (wanted.toLowerCase().endsWith(".json")) {
    return random(readConfigFile(wanted), `custom (${path.basename(wanted)})`, randomInitBanner(wanted));
  }

  if (wanted.toLowerCase() === "auto") {
    if (hasPretrainedWeights(AUTO_MODEL, cacheDir)) return loadPretrained(AUTO_MODEL, cacheDir, opts, log);
    let why = offlineForced() ?? (await probeHub(AUTO_MODEL, { endpoint: opts.endpoint, timeoutMs: opts.probeTimeoutMs }));
    if (why === null) {
      try {
        return await loadPretrained(AUTO_MODEL, cacheDir, opts, log);
      } catch (err) {
        if (!(err instanceof CourseError)) throw err;
        why = err.message;
      }
    }
    return random(TINY, "tiny", fallbackBanner(why, cacheDir));
  }

  const cfg = resolveModelConfig(wanted); // a ConfigError listing the names
  const key = Object.keys(MODEL_CONFIGS).find((k) => JSON.stringify(MODEL_CONFIGS[k]) === JSON.stringify(cfg)) ?? wanted;
  if (!hasCheckpoint(key)) return random(cfg, key, randomInitBanner(key));
  if (!hasPretrainedWeights(key, cacheDir)) {
    const why = offlineForced() ?? (await probeHub(key, { endpoint: opts.endpoint, timeoutMs: opts.probeTimeoutMs }));
    if (why !== null) throw new WeightsError(`${key} is not cached and cannot be downloaded (${why}); ${manualDownloadInstructions(key, cacheDir)}`);
  }
  return loadPretrained(key, cacheDir, opts, log);
}

/** Cached or downloaded GPT-2 weights, loaded; download progress goes to `log` every 2 s. */
async function loadPretrained(name: string, cacheDir: string, opts: ChooseModelOptions, log: (line: string) => void): Promise<ChosenModel> {
  let lastShown = 0;
  const dir = await ensurePretrainedWeights(name, cacheDir, {
    endpoint: opts.endpoint,
    onProgress: (p) => {
      const now = Date.now();
      if (now - lastShown < 2000 && p.received !== p.total) return;
      lastShown = now;
      const mb = (x: number) => (x / 2 ** 20).toFixed(0);
      log(`download ${p.file}: ${mb(p.received)}${p.total ? ` / ${mb(p.total)}` : ""} MB`);
    },
  });
  const model = await loadGPT2Directory(dir, { seed: opts.seed ?? BOOK_SEED, dropRate: opts.dropRate });
  return { model, name, pretrained: true, banner: null, source: path.resolve(dir) };
}
