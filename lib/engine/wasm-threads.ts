/**
 * The multi-threaded wasm build, in Node.
 *
 * @tensorflow/tfjs-backend-wasm ships a threaded+SIMD binary (XNNPACK over a pthread pool),
 * but never uses it in Node, for three reasons this file works around:
 *
 * 1. its feature flag `WASM_HAS_MULTITHREAD_SUPPORT` is hard-wired to false when IS_NODE;
 * 2. its pthread workers are started from a `blob:` URL (the worker script is bundled as a
 *    string), and Node's `worker_threads.Worker` only takes a file path. The same goes for
 *    the main script the workers import (`mainScriptUrlOrBlob`);
 * 3. the C++ side caps the pool at `os.cpus().length / 2` (it assumes two hyper-threads per
 *    core), so a 2-core machine gets one thread.
 *
 * So we register our own factory for the backend name "wasm" that loads the threaded module
 * with (2) the worker script written to a file in the temp directory and the main script's
 * real path, and (3) `os.cpus()` reporting 2 × threads while the module starts (restored
 * right after), then builds the same `BackendWasm` as the package does. Every wasm kernel
 * works unchanged: it is the same C++ compiled with threads.
 *
 * Must run before the backend is first started (`tf.setBackend("wasm")`).
 */
import * as tf from "@tensorflow/tfjs";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeAll, writeFileAtomic } from "../core/atomic-file";

/** The bits of @tensorflow/tfjs-backend-wasm this file uses. */
interface WasmPackage {
  BackendWasm: new (module: unknown) => tf.KernelBackend;
  setThreadsCount(n: number): void;
  getThreadsCount(): number;
  version_wasm: string;
}

type EmscriptenModule = { cwrap: (name: string, ret: string | null, args: string[]) => unknown; tfjs?: unknown };
type Factory = (config: Record<string, unknown>) => Promise<EmscriptenModule>;

/** Above this the C++ side caps anyway (it pre-creates 8 workers). */
const MAX_THREADS = 8;

let requestedThreads = 0;

/** How many threads the threaded backend would use by default: one per core. */
export function defaultWasmThreads(): number {
  const n = typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length;
  return Math.max(1, Math.min(MAX_THREADS, n));
}

/** The worker script as a file (Node's Worker cannot start from a blob: URL). */
function writeWorkerScript(wasmOut: string, version: string): string {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const { wasmWorkerContents } = require(path.join(wasmOut, "tfjs-backend-wasm-threaded-simd.worker.js")) as {
    wasmWorkerContents: string;
  };
  // The bundled string has real newlines where the script had "\n" escapes inside string
  // literals; the package escapes them again before making its blob, and so do we.
  const text = wasmWorkerContents.replace(/\n/g, "\\n");
  const file = path.join(os.tmpdir(), `course-tfjs-wasm-${version}-worker-${process.pid}.js`);
  // the project's one writer: no worker ever reads half a script (a killed run may have left this name behind)
  writeFileAtomic(file, (fd) => writeAll(fd, text));
  // the workers read it once at start-up; remove it when the process ends
  process.once("exit", () => fs.rmSync(file, { force: true }));
  return file;
}

/**
 * Register the threaded build as the "wasm" backend, to use `threads` threads.
 * Returns false (and changes nothing) if it is already registered or the files are missing.
 */
export function registerThreadedWasm(threads: number): boolean {
  if (requestedThreads > 0) return false;
  const pkg = require("@tensorflow/tfjs-backend-wasm") as WasmPackage;
  const wasmOut = path.join(path.dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "wasm-out");
  const mainScript = path.join(wasmOut, "tfjs-backend-wasm-threaded-simd.js");
  const binary = path.join(wasmOut, "tfjs-backend-wasm-threaded-simd.wasm");
  if (!fs.existsSync(mainScript) || !fs.existsSync(binary)) return false;
  const n = Math.max(1, Math.min(MAX_THREADS, Math.floor(threads)));

  const factory = async (): Promise<tf.KernelBackend> => {
    const workerScript = writeWorkerScript(wasmOut, pkg.version_wasm);
    const createModule = require(mainScript) as Factory;
    // the live module object (the `import * as os` namespace is a copy under esModuleInterop)
    const osModule = require("os") as { cpus: () => os.CpuInfo[] };
    const realCpus = osModule.cpus;
    // The workers need no TypeScript loader (tsx, ts-node) from our command line: plain
    // worker_threads start faster without it.
    const threadsModule = require("worker_threads") as { Worker: typeof import("worker_threads").Worker };
    const RealWorker = threadsModule.Worker;
    threadsModule.Worker = class extends RealWorker {
      constructor(file: string | URL, options: import("worker_threads").WorkerOptions = {}) {
        super(file, { execArgv: [], ...options });
      }
    };
    // (3) the C++ pool size is min(requested, os.cpus().length / 2), read once at start-up
    osModule.cpus = () => {
      const cpus = realCpus();
      return Array.from({ length: 2 * n }, (_, i) => cpus[i % cpus.length]);
    };
    let module: EmscriptenModule;
    try {
      module = await createModule({
        locateFile: (file: string, prefix: string) =>
          file.endsWith(".worker.js") ? workerScript : file.endsWith(".wasm") ? binary : prefix + file,
        mainScriptUrlOrBlob: mainScript, // (2) a path the workers can read
      });
    } finally {
      osModule.cpus = realCpus;
      threadsModule.Worker = RealWorker;
    }
    // The same bridge the package's own init() builds.
    module.tfjs = {
      init: module.cwrap("init", null, []),
      initWithThreadsCount: module.cwrap("init_with_threads_count", null, ["number"]),
      getThreadsCount: module.cwrap("get_threads_count", "number", []),
      registerTensor: module.cwrap("register_tensor", null, ["number", "number", "number"]),
      disposeData: module.cwrap("dispose_data", null, ["number"]),
      dispose: module.cwrap("dispose", null, []),
    };
    pkg.setThreadsCount(n);
    const backend = new pkg.BackendWasm(module); // starts XNNPACK's pthread pool
    // The pool's threads wait for work forever, and a running pthread's worker keeps Node's
    // event loop alive: without this a script would never exit. The main thread blocks in
    // each kernel until the pool is done, so no work is lost by letting the process end.
    const pthread = (module as { PThread?: { runningWorkers?: { unref(): void }[]; unusedWorkers?: { unref(): void }[] } }).PThread;
    for (const worker of [...(pthread?.runningWorkers ?? []), ...(pthread?.unusedWorkers ?? [])]) worker.unref();
    return backend;
  };

  singleThreadedFactory = tf.findBackendFactory("wasm");
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", factory, 2);
  requestedThreads = n;
  return true;
}

let singleThreadedFactory: (() => tf.KernelBackend | Promise<tf.KernelBackend>) | null = null;

/** Undo `registerThreadedWasm` (when the threaded build fails to start): the package's own factory again. */
export function restoreSingleThreadedWasm(): void {
  if (singleThreadedFactory === null) return;
  tf.removeBackend("wasm");
  tf.registerBackend("wasm", singleThreadedFactory, 2);
  singleThreadedFactory = null;
  requestedThreads = 0;
}

/** Threads the running wasm backend uses (1 for the single-threaded build). */
export function wasmThreadsInUse(): number {
  try {
    return Math.max(1, (require("@tensorflow/tfjs-backend-wasm") as WasmPackage).getThreadsCount());
  } catch {
    return 1;
  }
}
