/**
 * The engine: which TensorFlow.js backend runs the tensors.
 *
 * Every entry point (command line, notebook, test) calls `await initEngine()` once, first.
 * It picks the fastest backend present, in this order:
 *
 *   1. @tensorflow/tfjs-node-gpu  — libtensorflow with CUDA (backend name "tensorflow")
 *   2. @tensorflow/tfjs-backend-webgpu on a hardware GPU, through Dawn ("webgpu"; lib/engine/webgpu.ts)
 *   3. @tensorflow/tfjs-node      — libtensorflow on the CPU (backend name "tensorflow")
 *   4. @tensorflow/tfjs-backend-wasm — XNNPACK compiled to WebAssembly, SIMD ("wasm")
 *   5. the pure-JavaScript backend that ships with tfjs ("cpu")
 *
 * and prints one line saying what it chose and why each better one was skipped, e.g.
 * `engine: wasm (tfjs-node-gpu not installed; tfjs-node not installed)` or
 * `engine: tensorflow (tfjs-node, libtensorflow 2.21.0 from the TensorFlow wheel; tfjs-node-gpu not installed)`.
 *
 * The two native packages are optional dependencies: their install downloads libtensorflow,
 * which fails offline, so they are often absent, or present without their binding. A native
 * package counts only when installed and built (lib/engine/native.ts); `npm run setup:tensorflow`
 * builds tfjs-node against the libtensorflow in TensorFlow's Python wheel.
 *
 * Override with `initEngine({ backend })` (a CLI's `--backend` flag) or the environment
 * variable `COURSE_BACKEND=auto|tensorflow|webgpu|wasm|cpu`; the option wins over the variable.
 *
 * On wasm, the engine also registers the kernels that wasm lacks for training and installs
 * speed patches such as a faster transposed matmul (lib/engine/wasm-patches.ts), so the model
 * code stays plain tf.* calls. `patches: false` or `COURSE_WASM_PATCHES=0` leaves out the
 * speed patches (the missing kernels are always added: training needs them). The speed patches
 * were written for one tfjs release; on another they stay off and the line says so
 * (lib/engine/wasm-guard.ts).
 *
 * wasm runs XNNPACK on one thread per core (`threads`, `COURSE_WASM_THREADS=1` for the
 * package's single-threaded build); see lib/engine/wasm-threads.ts for how. Where the matmuls run on a
 * BLAS (its own threads), the default is one thread (`defaultThreads` says why).
 *
 * On the plain JavaScript backend ("cpu") it replaces a kernel whose shipped version cannot finish a
 * training step of a 50,257-token model (lib/engine/cpu-kernels.ts); `patches: false` or
 * `COURSE_CPU_PATCHES=0` leaves it as shipped.
 */
import * as tf from "@tensorflow/tfjs";
import { ConfigError } from "../core/errors";
import { describeLibtensorflow, loadNative, nativeState } from "./native";
import { installWasmPatches } from "./wasm-patches";
import { loadBlas } from "./blas-matmul";
import { installCpuPatches } from "./cpu-kernels";
import { foundWasm } from "./wasm-guard";
import { EngineSkipped, loadWebGPU } from "./webgpu";
import { defaultWasmThreads, registerThreadedWasm, restoreSingleThreadedWasm, wasmThreadsInUse } from "./wasm-threads";

export type EngineChoice = "auto" | "tensorflow" | "webgpu" | "wasm" | "cpu";
export const ENGINE_CHOICES: readonly EngineChoice[] = ["auto", "tensorflow", "webgpu", "wasm", "cpu"];

export interface EngineOptions {
  /** Which backend to use; default: `COURSE_BACKEND`, else "auto". */
  backend?: EngineChoice;
  /** Where the one-line report goes; default console.log. Pass `() => {}` to silence it. */
  log?: (line: string) => void;
  /** Install the wasm speed patches (default: true unless `COURSE_WASM_PATCHES=0`), and the cpu backend's (cpu-kernels.ts). */
  patches?: boolean;
  /**
   * wasm only: threads for XNNPACK (default: `COURSE_WASM_THREADS`, else one per core).
   * 1 uses the package's single-threaded build; more uses its threaded build, which the
   * package itself never starts in Node (lib/engine/wasm-threads.ts). Fixed once wasm has started.
   */
  threads?: number;
  /**
   * The tfjs versions the wasm patch guard sees (default: the installed ones). Tests pass
   * another release to see the engine refuse its speed patches.
   */
  tfjsVersions?: { core: string; wasm: string };
}

export interface EngineInfo {
  /** The tfjs backend name now active: "tensorflow", "webgpu", "wasm" or "cpu". */
  name: string;
  /** Why: the package used and why each better engine was skipped. */
  reason: string;
}

/** A candidate engine: how to load it (and any notes for the engine line), and the backend name it registers. */
interface Candidate {
  label: string;
  backend: string;
  /** may return (a promise of) notes for the engine line */
  load: () => unknown;
}

// `require` through a variable so TypeScript does not try to resolve optional packages.
const requireOptional: (name: string) => unknown = (name) => require(name);

/** A native package: "not installed" unless installed *and* built (lib/engine/native.ts says why). */
function nativeCandidate(label: string): Candidate {
  const name = `@tensorflow/${label}`;
  return {
    label,
    backend: "tensorflow",
    load: () => {
      const found = nativeState(name);
      if (found.state === "missing") throw new NotInstalled(`${label} not installed`);
      if (found.state === "unbuilt") throw new NotInstalled(`${label} not installed (no binding)`);
      const { version, oneDNN } = loadNative(name, found);
      // oneDNN's fused kernels round differently from plain TensorFlow's (its own start-up notice, said here)
      return [describeLibtensorflow(found.dir, version), ...(oneDNN ? ["oneDNN on"] : [])];
    },
  };
}

class NotInstalled extends Error {}

const NATIVE_GPU = nativeCandidate("tfjs-node-gpu");
const NATIVE_CPU = nativeCandidate("tfjs-node");
const WASM: Candidate = {
  label: "wasm",
  backend: "wasm",
  load: () => {
    requireOptional("@tensorflow/tfjs-backend-wasm");
    return [];
  },
};
const CPU: Candidate = { label: "cpu", backend: "cpu", load: () => [] };
// auto takes a hardware GPU only; asked for by name, a software adapter too
const WEBGPU_HARDWARE: Candidate = { label: "webgpu", backend: "webgpu", load: () => loadWebGPU(false) };
const WEBGPU: Candidate = { label: "webgpu", backend: "webgpu", load: () => loadWebGPU(true) };

const CANDIDATES: Record<EngineChoice, Candidate[]> = {
  auto: [NATIVE_GPU, WEBGPU_HARDWARE, NATIVE_CPU, WASM, CPU],
  tensorflow: [NATIVE_GPU, NATIVE_CPU],
  webgpu: [WEBGPU],
  wasm: [WASM],
  cpu: [CPU],
};

/** Why a package could not be loaded, in a few words: "not installed" or the error's first line. */
function loadFailure(label: string, err: unknown): string {
  if (err instanceof NotInstalled || err instanceof EngineSkipped) return err.message;
  const e = err as { code?: string; message?: string };
  const message = String(e?.message ?? err);
  if (e?.code === "MODULE_NOT_FOUND" && message.includes(`@tensorflow/${label}`)) {
    return `${label} not installed`;
  }
  return `${label} failed to load: ${message.split("\n")[0]}`;
}

function resolveChoice(option: EngineChoice | undefined): EngineChoice {
  const fromEnv = process.env.COURSE_BACKEND;
  const choice = option ?? (fromEnv === undefined || fromEnv === "" ? "auto" : fromEnv);
  if (!(ENGINE_CHOICES as readonly string[]).includes(choice)) {
    const where = option !== undefined ? "initEngine({ backend })" : "COURSE_BACKEND";
    throw new ConfigError(`${where}: unknown engine "${choice}" (expected one of ${ENGINE_CHOICES.join(", ")})`);
  }
  return choice as EngineChoice;
}

/**
 * wasm's threads when nothing asks for a number: one where the speed patches put the matmuls on a BLAS (which
 * runs its own threads), else one per core. XNNPACK's pool hands every op, however small, to its threads, and
 * waking them costs more than a generated token's elementwise ops: on a 2-core machine one thread generated
 * 1.7–3.3x faster than two (bench-tiny and gpt2-small, issue 20) and trained bench-tiny as fast or faster.
 */
function defaultThreads(patches: boolean): number {
  return patches && loadBlas().library !== null ? 1 : defaultWasmThreads();
}

function resolveThreads(option: number | undefined, patches: boolean): number {
  const fromEnv = process.env.COURSE_WASM_THREADS;
  const value = option ?? (fromEnv === undefined || fromEnv === "" ? defaultThreads(patches) : Number(fromEnv));
  if (!Number.isInteger(value) || value < 1) {
    const where = option !== undefined ? "initEngine({ threads })" : "COURSE_WASM_THREADS";
    throw new ConfigError(`${where}: threads must be a positive integer, got "${option ?? fromEnv}"`);
  }
  return value;
}

function resolvePatches(option: boolean | undefined): boolean {
  if (option !== undefined) return option;
  return process.env.COURSE_WASM_PATCHES !== "0";
}

// One engine per process: a second call with the same request returns the first result.
let current: { key: string; info: Promise<EngineInfo> } | null = null;

/** Choose, load and activate the backend; see the file comment. Safe to call many times. */
export function initEngine(opts: EngineOptions = {}): Promise<EngineInfo> {
  let choice: EngineChoice;
  let threads: number;
  try {
    choice = resolveChoice(opts.backend);
    threads = resolveThreads(opts.threads, resolvePatches(opts.patches));
  } catch (err) {
    return Promise.reject(err);
  }
  const patches = resolvePatches(opts.patches);
  const versions = opts.tfjsVersions;
  const key = `${choice}/${patches}/${threads}${versions ? `/${versions.core}/${versions.wasm}` : ""}`;
  if (current !== null && current.key === key) return current.info;
  const log = opts.log ?? ((line: string) => console.log(line));
  const info = start(choice, patches, threads, log, versions);
  current = { key, info };
  // A failed start must not be cached: the next call tries again.
  info.catch(() => {
    if (current !== null && current.info === info) current = null;
  });
  return info;
}

// The wasm build (single- or multi-threaded) is chosen when wasm first starts, once per process.
let wasmStarted = false;

async function start(
  choice: EngineChoice,
  patches: boolean,
  threads: number,
  log: (line: string) => void,
  versions: EngineOptions["tfjsVersions"],
): Promise<EngineInfo> {
  const skipped: string[] = [];
  for (const candidate of CANDIDATES[choice]) {
    const notes: string[] = [];
    try {
      const loaded = await candidate.load();
      if (Array.isArray(loaded)) notes.push(...(loaded as string[]));
    } catch (err) {
      skipped.push(loadFailure(candidate.label, err));
      continue;
    }
    if (candidate.backend === "wasm") {
      if (!wasmStarted && threads > 1) registerThreadedWasm(threads);
      notes.push(...installWasmPatches(patches, { ...foundWasm(), ...versions }));
    }
    if (candidate.backend === "cpu") notes.push(...installCpuPatches(patches));
    let ok = false;
    try {
      ok = await tf.setBackend(candidate.backend);
      await tf.ready();
      if (!ok && candidate.backend === "wasm" && !wasmStarted && threads > 1) {
        // the threaded build did not start: say so, and fall back to the single-threaded one
        notes.push("threaded build failed to start");
        restoreSingleThreadedWasm();
        ok = await tf.setBackend("wasm");
        await tf.ready();
      }
      if (candidate.backend === "wasm") {
        wasmStarted = true;
        const inUse = wasmThreadsInUse();
        notes.push(`${inUse} thread${inUse === 1 ? "" : "s"}`);
        if (inUse !== threads) notes.push(`${threads} asked: the wasm build is chosen once per process`);
      }
    } catch (err) {
      skipped.push(`${candidate.label} failed to start: ${String((err as Error)?.message ?? err).split("\n")[0]}`);
      continue;
    }
    if (!ok) {
      skipped.push(`${candidate.label} failed to start`);
      continue;
    }
    // one line: the package and its library first on native, then why each better engine was skipped
    const parts =
      candidate.backend === "tensorflow" ? [[candidate.label, ...notes].join(", "), ...skipped] : [...skipped, ...notes];
    if (choice !== "auto") parts.unshift(`requested${process.env.COURSE_BACKEND === choice ? " by COURSE_BACKEND" : ""}`);
    const reason = parts.join("; ");
    log(`engine: ${candidate.backend}${reason ? ` (${reason})` : ""}`);
    return { name: candidate.backend, reason };
  }
  throw new ConfigError(`engine "${choice}" is not available (${skipped.join("; ")})`);
}
