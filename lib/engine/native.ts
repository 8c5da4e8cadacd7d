/**
 * The native engines: is `@tensorflow/tfjs-node(-gpu)` installed *and built*, and where did its
 * libtensorflow come from.
 *
 * A native package is usable only once its binding (`tfjs_binding.node`) is built; npm can leave
 * the package without it (a failed libtensorflow download, `--ignore-scripts`). Requiring such a
 * package registers its ~150 kernels with tfjs before it throws, which leaves a "kernel already
 * registered" warning for each when the next native package loads. So the engine checks here first,
 * without requiring the package: the binding's path is computed by the package's own resolver
 * (@mapbox/node-pre-gyp's `find`, as its index.js does), and the binding itself is loaded before the
 * package, so a library it cannot open (CUDA on a machine without it) fails with no side effects.
 *
 * `npm run setup:tensorflow` (lib/cli/setup-tensorflow.ts) builds tfjs-node against the
 * libtensorflow inside TensorFlow's Python wheel, and leaves a stamp in the package's `deps/`
 * saying so; the engine line quotes it.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { withNativeStderr } from "./native-chatter";

/** The stamp `setup:tensorflow` writes into `<package>/deps/` once the binding is built. */
export const LIBTENSORFLOW_STAMP = "course-libtensorflow.json";

export interface LibtensorflowStamp {
  /** The TensorFlow release the library came from, e.g. "2.21.0". */
  version: string;
  /** Where it came from, in words: "the TensorFlow wheel". */
  source: string;
  /** The wheel's file name. */
  wheel: string;
  /** The tfjs-node version the binding was built for. */
  tfjsNode: string;
}

export type NativeState =
  | { state: "missing" }
  | { state: "unbuilt"; dir: string; binding: string | null }
  | { state: "built"; dir: string; binding: string };

// `require` through a variable so TypeScript does not try to resolve optional packages.
const requireDynamic: (id: string) => unknown = (id) => require(id);

/** The folder of an installed package, or null; resolved from here, as `require` would. */
export function packageDir(name: string, paths?: string[]): string | null {
  try {
    return dirname(require.resolve(`${name}/package.json`, paths ? { paths } : undefined));
  } catch {
    return null;
  }
}

/** Where the package's binding is (built or not), by the package's own resolver; null if that fails. */
export function bindingPath(dir: string): string | null {
  const preGyp = packageDir("@mapbox/node-pre-gyp", [dir]);
  if (preGyp === null) return null;
  try {
    const { find } = requireDynamic(preGyp) as { find: (packageJson: string) => string };
    return find(join(dir, "package.json"));
  } catch {
    return null;
  }
}

/** Installed and built, installed without its binding, or not installed. */
export function nativeState(name: string, paths?: string[]): NativeState {
  const dir = packageDir(name, paths);
  if (dir === null) return { state: "missing" };
  const binding = bindingPath(dir);
  if (binding === null || !existsSync(binding)) return { state: "unbuilt", dir, binding };
  return { state: "built", dir, binding };
}

/** The stamp setup:tensorflow left in a package, or null (tfjs-node's own download, or no stamp). */
export function readStamp(dir: string): LibtensorflowStamp | null {
  try {
    const s = JSON.parse(readFileSync(join(dir, "deps", LIBTENSORFLOW_STAMP), "utf8")) as LibtensorflowStamp;
    return typeof s.version === "string" && typeof s.source === "string" ? s : null;
  } catch {
    return null;
  }
}

/**
 * Load a built native package: its binding first (a missing shared library throws here, before the
 * package registers any kernel), then the package. Returns the binding's libtensorflow version.
 */
export function loadNative(name: string, built: { binding: string }): { version: string; oneDNN: boolean } {
  // TensorFlow logs its CPU features at INFO when it starts; warnings and errors still show
  process.env.TF_CPP_MIN_LOG_LEVEL ??= "1";
  // libtensorflow 2.21 prints two lines of its own at load whatever the log level says (native-chatter.ts)
  const { result: binding, oneDNN } = withNativeStderr(() => {
    const b = requireDynamic(built.binding) as { TF_Version?: string };
    requireDynamic(name);
    return b;
  });
  return { version: binding.TF_Version ?? "unknown", oneDNN };
}

/** "libtensorflow 2.21.0 from the TensorFlow wheel", or "libtensorflow 2.9.1" (the package's own download). */
export function describeLibtensorflow(dir: string, tfVersion: string): string {
  const stamp = readStamp(dir);
  return stamp !== null ? `libtensorflow ${tfVersion} from ${stamp.source}` : `libtensorflow ${tfVersion}`;
}
