/**
 * libtensorflow out of TensorFlow's Python wheel, laid out the way @tensorflow/tfjs-node's
 * binding.gyp expects it (used by `npm run setup:tensorflow`, lib/cli/setup-tensorflow.ts).
 *
 * The wheel (a zip) holds `tensorflow/libtensorflow_cc.so.2`, which exports the C API (`TF_*`,
 * `TFE_*`), `tensorflow/libtensorflow_framework.so.2` beside it, and the headers under
 * `tensorflow/include/`. The binding includes six of them; those include a few more. binding.gyp
 * links `-ltensorflow -ltensorflow_framework` from `deps/lib` with the rpath
 * `$ORIGIN/../../deps/lib`, and tfjs-node's install script skips its own download when
 * `deps/lib/libtensorflow.so.2.9.1` exists. So `deps/lib` gets the two libraries under their
 * sonames (which is what the built binding asks the loader for) and links named as above.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, SetupError } from "../core/errors";

/** The TensorFlow release whose wheel setup:tensorflow uses. */
export const TF_WHEEL_VERSION = "2.21.0";

export interface WheelTarget {
  /** The PyPI project: `tensorflow-cpu` (no CUDA libraries in it). */
  project: string;
  /** How its wheel files start: `tensorflow_cpu`. */
  fileStem: string;
  /** pip `--platform` tags, newest first. */
  platforms: string[];
  /** pip `--python-version`: the library inside is the same for every Python the release supports. */
  python: string;
}

/** The wheel for this machine, or a ConfigError for a platform setup:tensorflow does not handle. */
export function wheelTarget(os: string, cpu: string): WheelTarget {
  if (os === "linux" && cpu === "x64") {
    return { project: "tensorflow-cpu", fileStem: "tensorflow_cpu", platforms: ["manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"], python: "3.11" };
  }
  throw new ConfigError(`unsupported platform ${os}-${cpu}: setup:tensorflow builds on Linux x86-64 only (README, Engines, says what macOS would take)`);
}

/** The headers the binding includes (binding/*.cc, *.h in tfjs-node 4.22); their own includes are followed. */
const BINDING_HEADERS = [
  "tensorflow/c/c_api.h",
  "tensorflow/c/eager/c_api.h",
  "tensorflow/c/tf_datatype.h",
  "tensorflow/c/tf_status.h",
  "tensorflow/c/tf_tensor.h",
  "tensorflow/core/platform/ctstring_internal.h",
];

// Python's zipfile streams the 790 MB library out of the wheel without holding it in memory;
// the headers' own `#include "..."` lines are followed to what exists in the wheel.
const EXTRACT_PY = String.raw`
import json, re, shutil, sys, zipfile
wheel, deps, roots = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
z = zipfile.ZipFile(wheel)
names = set(z.namelist())
inc = "tensorflow/include/"
def copy(member, dest):
    import os
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with z.open(member) as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
for lib in ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2"):
    if "tensorflow/" + lib not in names:
        sys.exit("the wheel has no tensorflow/" + lib)
    copy("tensorflow/" + lib, deps + "/lib/" + lib)
seen, todo = set(), list(roots)
while todo:
    h = todo.pop()
    if h in seen or inc + h not in names:
        continue
    seen.add(h)
    text = z.read(inc + h).decode("utf-8", "replace")
    todo.extend(re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M))
missing = [r for r in roots if r not in seen]
if missing:
    sys.exit("the wheel has no header " + ", ".join(missing))
for h in sorted(seen):
    copy(inc + h, deps + "/include/" + h)
print(len(seen))
`;

/**
 * Replace `deps/` with the wheel's libraries and headers; returns how many headers were copied.
 * (Python runs the zip work: setup:tensorflow needs it for pip anyway.)
 */
export function extractLibtensorflow(python: string, wheel: string, deps: string): number {
  rmSync(deps, { recursive: true, force: true });
  mkdirSync(join(deps, "lib"), { recursive: true });
  const r = spawnSync(python, ["-c", EXTRACT_PY, wheel, deps, JSON.stringify(BINDING_HEADERS)], { encoding: "utf8" });
  if (r.status !== 0) {
    const last = (r.stderr || r.stdout || "").trim().split("\n").pop() ?? "";
    throw new SetupError(`extracting libtensorflow from ${wheel}: ${last || `exit code ${r.status}`}`);
  }
  const lib = join(deps, "lib");
  // what the linker looks for (-ltensorflow, -ltensorflow_framework), and what tfjs-node's install checks
  for (const [link, target] of [
    ["libtensorflow.so", "libtensorflow_cc.so.2"],
    ["libtensorflow_framework.so", "libtensorflow_framework.so.2"],
    ["libtensorflow.so.2.9.1", "libtensorflow_cc.so.2"],
    ["libtensorflow_framework.so.2.9.1", "libtensorflow_framework.so.2"],
  ]) {
    symlinkSync(target, join(lib, link));
  }
  return Number(r.stdout.trim());
}
