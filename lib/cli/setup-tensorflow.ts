/**
 * `npm run setup:tensorflow`: build the native CPU engine (@tensorflow/tfjs-node) against the
 * libtensorflow inside TensorFlow's own Python wheel.
 *
 * tfjs-node's install downloads a libtensorflow 2.9.1 built in 2022, from a host that proxies and
 * offline machines cannot reach, with no build for some platforms; when it fails, npm drops the
 * package and the course runs on WebAssembly. TensorFlow's pip wheel carries the same C API
 * (`libtensorflow_cc.so.2` exports every `TF_*`/`TFE_*` function the binding calls), current and
 * from wherever pip reaches. The steps, each skipped when already done:
 *
 *   1. the tfjs-node package itself, if npm dropped it (`npm install --no-save --ignore-scripts`);
 *   2. `pip download` of the wheel for the target platform (nothing is installed into any Python);
 *   3. the two libraries and the C API headers the binding includes, out of the wheel, into the
 *      package's `deps/` under the names its binding.gyp links (lib/cli/libtensorflow-wheel.ts);
 *   4. the binding, compiled with node-gyp against this Node's own headers (no download);
 *   5. a stamp, `deps/course-libtensorflow.json`: the next run says "already built", and the
 *      engine line says where libtensorflow came from.
 *
 * Options: `--force` rebuilds; `COURSE_TF_WHEEL=/path/to/tensorflow_cpu-*.whl` uses a wheel
 * already on disk (no pip). Needs Python 3 with pip, make and a C++ compiler (g++).
 */
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { arch, platform } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import { Command } from "commander";
import { ConfigError, SetupError } from "../core/errors";
import { writeAll, writeFileAtomic } from "../core/atomic-file";
import { bindingPath, LIBTENSORFLOW_STAMP, LibtensorflowStamp, packageDir, readStamp } from "../engine/native";
import { extractLibtensorflow, TF_WHEEL_VERSION, wheelTarget } from "./libtensorflow-wheel";
import { runCli } from "./common";

const TFJS_NODE = "@tensorflow/tfjs-node";
const ROOT = resolve(__dirname, "..", "..");
const WHEEL_CACHE = join(ROOT, ".cache", "tensorflow");

const step = (n: number, text: string) => console.log(`setup:tensorflow [${n}/5] ${text}`);

/** Run a command; on failure a SetupError naming it and the last line it printed. */
function run(what: string, cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; quiet?: boolean } = {}): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, {
    cwd: opts.cwd ?? ROOT,
    env: opts.env ?? process.env,
    encoding: "utf8",
    stdio: ["ignore", opts.quiet ? "pipe" : "inherit", "pipe"],
    maxBuffer: 64 << 20,
  });
  if (r.error) throw new SetupError(`${what}: could not run ${cmd} (${(r.error as NodeJS.ErrnoException).code ?? r.error.message})`);
  if (r.status !== 0) {
    const last = `${r.stderr ?? ""}\n${r.stdout ?? ""}`.split("\n").map((l) => l.trim()).filter((l) => l !== "" && !/^(gyp|npm) (ERR!|info|warn) (stack|cwd|node -v|node-gyp -v|not ok|System)/.test(l));
    const errLine = last.find((l) => /error|ERROR|No matching/.test(l)) ?? last[last.length - 1] ?? `exit code ${r.status}`;
    throw new SetupError(`${what} failed: ${errLine.slice(0, 300)}`);
  }
  return r;
}

const works = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: "ignore" }).status === 0;

/** The first Python with pip: `COURSE_SETUP_PYTHON`, python3, python. */
function findPython(): string {
  const candidates = [process.env.COURSE_SETUP_PYTHON, "python3", "python"].filter((p): p is string => !!p);
  const found = candidates.find((py) => works(py, ["-m", "pip", "--version"]));
  if (found === undefined) throw new SetupError(`no Python with pip found (tried ${candidates.join(", ")}): install Python 3 and pip, or set COURSE_SETUP_PYTHON`);
  return found;
}

/** make and a C++ compiler, which node-gyp drives. */
function checkCompiler(): void {
  const missing = ["make", process.env.CXX ?? "g++"].filter((cmd) => !works(cmd, ["--version"]));
  if (missing.length > 0) {
    throw new SetupError(`${missing.join(" and ")} not found on the PATH: the binding is compiled with make and a C++ compiler (Debian/Ubuntu: apt-get install make g++)`);
  }
}

/** npm as this process was started by it (`npm run`), else npm on the PATH. */
function npmCommand(): [string, string[]] {
  const execPath = process.env.npm_execpath;
  return execPath && existsSync(execPath) ? [process.execPath, [execPath]] : ["npm", []];
}

/** The tfjs-node version the project asks for (package.json), e.g. "4.22.0". */
function wantedTfjsNode(): string {
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { optionalDependencies?: Record<string, string> };
  const v = pkg.optionalDependencies?.[TFJS_NODE];
  if (v === undefined) throw new ConfigError(`package.json: no optionalDependencies entry for ${TFJS_NODE}`);
  return v;
}

/** Step 1: the package, installed without its install script if npm dropped it. */
function ensurePackage(): string {
  let dir = packageDir(TFJS_NODE, [ROOT]);
  if (dir !== null) {
    step(1, `${TFJS_NODE} is installed (${dir})`);
    return dir;
  }
  const version = wantedTfjsNode();
  step(1, `installing ${TFJS_NODE}@${version} without its libtensorflow download (npm install --no-save --ignore-scripts)`);
  const [npm, pre] = npmCommand();
  run("npm install", npm, [...pre, "install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", `${TFJS_NODE}@${version}`], { quiet: true });
  dir = packageDir(TFJS_NODE, [ROOT]);
  if (dir === null) throw new SetupError(`npm install did not install ${TFJS_NODE}`);
  return dir;
}

/** Step 2: the wheel, from COURSE_TF_WHEEL, the cache, or pip download. */
function ensureWheel(python: string): string {
  const fromEnv = process.env.COURSE_TF_WHEEL;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new SetupError(`COURSE_TF_WHEEL: no such file ${fromEnv}`);
    step(2, `using the wheel ${fromEnv}`);
    return fromEnv;
  }
  const target = wheelTarget(platform(), arch());
  const cached = () => (existsSync(WHEEL_CACHE) ? readdirSync(WHEEL_CACHE).find((f) => f.startsWith(`${target.fileStem}-${TF_WHEEL_VERSION}-`) && f.endsWith(".whl")) : undefined);
  let wheel = cached();
  if (wheel !== undefined) {
    step(2, `the wheel is already downloaded (.cache/tensorflow/${wheel})`);
    return join(WHEEL_CACHE, wheel);
  }
  step(2, `downloading ${target.project} ${TF_WHEEL_VERSION} for ${target.platforms[0]} with pip (~270 MB; nothing is installed)`);
  mkdirSync(WHEEL_CACHE, { recursive: true });
  const args = ["-m", "pip", "download", `${target.project}==${TF_WHEEL_VERSION}`, "--no-deps", "--only-binary=:all:", "--python-version", target.python, "--dest", WHEEL_CACHE];
  for (const p of target.platforms) args.push("--platform", p);
  try {
    run("pip download", python, args);
  } catch (err) {
    if (err instanceof SetupError && /No matching distribution|Could not find a version/.test(err.message)) {
      throw new SetupError(`wheel not found: pip has no ${target.project} ${TF_WHEEL_VERSION} for ${target.platforms[0]} / Python ${target.python} (set COURSE_TF_WHEEL to a wheel on disk)`);
    }
    throw err;
  }
  wheel = cached();
  if (wheel === undefined) throw new SetupError(`pip download finished but left no ${target.fileStem}-${TF_WHEEL_VERSION}-*.whl in .cache/tensorflow`);
  return join(WHEEL_CACHE, wheel);
}

/** This Node's own headers (include/node beside the binary), so node-gyp needs no download; null if absent. */
export function localNodeDir(): string | null {
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, "include", "node", "node_api.h")) && existsSync(join(prefix, "include", "node", "common.gypi")) ? prefix : null;
}

/** Step 4: compile the binding with node-pre-gyp/node-gyp, as the package's own install would. */
function buildBinding(dir: string): string {
  const preGyp = packageDir("@mapbox/node-pre-gyp", [dir]);
  if (preGyp === null) throw new SetupError(`${TFJS_NODE}'s dependency @mapbox/node-pre-gyp is not installed: run npm install`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  const nodedir = localNodeDir();
  if (nodedir !== null) env.npm_config_nodedir = nodedir; // node-gyp reads its options from npm_config_*
  if (!env.npm_config_node_gyp) {
    // node-gyp ships inside npm; node-pre-gyp finds it from npm_config_node_gyp
    const [, pre] = npmCommand();
    const npmGyp = pre[0] ? join(dirname(pre[0]), "..", "node_modules", "node-gyp", "bin", "node-gyp.js") : "";
    if (existsSync(npmGyp)) env.npm_config_node_gyp = npmGyp;
  }
  step(4, `compiling the binding with node-gyp against ${nodedir === null ? "downloaded Node headers" : `Node's headers in ${nodedir}/include/node`}`);
  rmSync(join(dir, "build"), { recursive: true, force: true });
  run("building the binding (node-pre-gyp rebuild)", process.execPath, [join(preGyp, "bin", "node-pre-gyp"), "rebuild", "--build-from-source"], { cwd: dir, env, quiet: true });
  const binding = bindingPath(dir);
  if (binding === null || !existsSync(binding)) throw new SetupError(`the build finished but left no binding at ${binding ?? "(node-pre-gyp could not say where)"}`);
  return binding;
}

/** Does the built binding load, and which libtensorflow does it report? (A child process: loading it here would pin the engine.) */
function checkBinding(binding: string): string {
  const r = spawnSync(process.execPath, ["-e", `process.stdout.write(require(${JSON.stringify(binding)}).TF_Version)`], { encoding: "utf8" });
  if (r.status !== 0) throw new SetupError(`the binding was built but does not load: ${(r.stderr.split("\n").find((l) => /Error/.test(l)) ?? r.stderr).trim().slice(0, 300)}`);
  return r.stdout.trim();
}

async function main(): Promise<void> {
  const program = new Command()
    .name("setup:tensorflow")
    .description("build @tensorflow/tfjs-node against libtensorflow from the TensorFlow pip wheel")
    .option("--force", "rebuild even if already built")
    .parse();
  const force = Boolean(program.opts().force);
  wheelTarget(platform(), arch()); // unsupported platform: say so before anything else

  const existing = packageDir(TFJS_NODE, [ROOT]);
  const stamp = existing === null ? null : readStamp(existing);
  const built = existing === null ? null : bindingPath(existing);
  if (!force && existing !== null && stamp?.version === TF_WHEEL_VERSION && built !== null && existsSync(built)) {
    console.log(`setup:tensorflow: already built (libtensorflow ${stamp.version} from ${stamp.wheel}; --force rebuilds)`);
    return;
  }
  const python = findPython();
  checkCompiler();
  const dir = ensurePackage();
  const wheel = ensureWheel(python);
  step(3, `extracting libtensorflow and its C API headers from ${basename(wheel)}`);
  const headers = extractLibtensorflow(python, wheel, join(dir, "deps"));
  console.log(`setup:tensorflow       ${headers} headers, libtensorflow_cc.so.2 and libtensorflow_framework.so.2 in ${join(dir, "deps")}`);
  const binding = buildBinding(dir);
  const version = checkBinding(binding);
  const newStamp: LibtensorflowStamp = { version: TF_WHEEL_VERSION, source: "the TensorFlow wheel", wheel: basename(wheel), tfjsNode: wantedTfjsNode() };
  writeFileAtomic(join(dir, "deps", LIBTENSORFLOW_STAMP), (fd) => writeAll(fd, `${JSON.stringify(newStamp, null, 2)}\n`));
  step(5, `built: ${binding} loads libtensorflow ${version}; COURSE_BACKEND=tensorflow (or auto) now uses it`);
}

if (require.main === module) runCli(main);
