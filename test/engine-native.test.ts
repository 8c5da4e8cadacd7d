// The native packages: installed and built, installed without a binding, or missing (lib/engine/native.ts);
// and starting the engine leaves one line and no "kernel already registered" warnings, whatever is installed.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { bindingPath, describeLibtensorflow, LIBTENSORFLOW_STAMP, nativeState, packageDir } from "../lib/engine/native";
import { withoutChatter } from "../lib/engine/native-chatter";

const ROOT = path.resolve(__dirname, "..");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "engine-native-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A package named like tfjs-node-gpu, with tfjs-node 4.22's binary settings and no binding. */
function fakePackage(): string {
  const dir = path.join(tmp, "node_modules", "@tensorflow", "tfjs-node-gpu");
  fs.mkdirSync(dir, { recursive: true });
  const binary = { module_name: "tfjs_binding", module_path: "./lib/napi-v{napi_build_version}", host: "https://example.invalid", remote_path: "./napi-v{napi_build_version}/{version}/", napi_versions: [3, 4, 5, 6, 7, 8] };
  fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "@tensorflow/tfjs-node-gpu", version: "4.22.0", main: "index.js", binary }));
  fs.writeFileSync(path.join(dir, "index.js"), "throw new Error('must not be required');\n");
  const preGyp = packageDir("@mapbox/node-pre-gyp", [ROOT]) ?? packageDir("@mapbox/node-pre-gyp", [path.join(ROOT, "node_modules", "@tensorflow", "tfjs-node")]);
  if (preGyp !== null) {
    fs.mkdirSync(path.join(tmp, "node_modules", "@mapbox"), { recursive: true });
    fs.symlinkSync(preGyp, path.join(tmp, "node_modules", "@mapbox", "node-pre-gyp"));
  }
  return dir;
}

test("missing, unbuilt and built are told apart without requiring the package", (t) => {
  assert.deepEqual(nativeState("@tensorflow/no-such-package", [tmp]), { state: "missing" });
  const dir = fakePackage();
  const unbuilt = nativeState("@tensorflow/tfjs-node-gpu", [tmp]);
  assert.equal(unbuilt.state, "unbuilt");
  if (!fs.existsSync(path.join(tmp, "node_modules", "@mapbox", "node-pre-gyp"))) {
    return t.skip("@mapbox/node-pre-gyp is not installed here (it comes with tfjs-node)");
  }
  const binding = bindingPath(dir)!;
  assert.match(binding, /lib[\\/]napi-v\d+[\\/]tfjs_binding\.node$/);
  fs.mkdirSync(path.dirname(binding), { recursive: true });
  fs.writeFileSync(binding, "");
  assert.deepEqual(nativeState("@tensorflow/tfjs-node-gpu", [tmp]), { state: "built", dir, binding });
  // the engine line's words for its library: the stamp setup:tensorflow leaves, or just the version
  assert.equal(describeLibtensorflow(dir, "2.9.1"), "libtensorflow 2.9.1");
  fs.mkdirSync(path.join(dir, "deps"));
  fs.writeFileSync(path.join(dir, "deps", LIBTENSORFLOW_STAMP), JSON.stringify({ version: "2.21.0", source: "the TensorFlow wheel", wheel: "w.whl", tfjsNode: "4.22.0" }));
  assert.equal(describeLibtensorflow(dir, "2.21.0"), "libtensorflow 2.21.0 from the TensorFlow wheel");
});

test("initEngine (auto) prints one line and no kernel warnings, whatever native packages are here", () => {
  const code = `require("./lib/engine").initEngine({ backend: "auto" }).then((i) => console.log("name=" + i.name))`;
  const env = { ...process.env };
  delete env.COURSE_BACKEND;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 2, r.stdout);
  assert.match(lines[0], /^engine: (tensorflow|wasm|cpu) \([^\n]*\)$/);
  assert.ok(!/already registered/i.test(r.stderr + r.stdout), r.stderr);
  // libtensorflow's load-time notices are dropped (lib/engine/native-chatter.ts); the oneDNN one is said in the line
  assert.ok(!/absl::InitializeLog|oneDNN custom operations/.test(r.stderr), r.stderr);
  for (const pkg of ["tfjs-node-gpu", "tfjs-node"]) {
    const s = nativeState(`@tensorflow/${pkg}`, [ROOT]).state;
    // a package without its binding is "not installed (no binding)", never "failed to load"
    if (s === "unbuilt") assert.match(lines[0], new RegExp(`${pkg} not installed \\(no binding\\)`));
    if (s === "missing") assert.match(lines[0], new RegExp(`${pkg} not installed`));
  }
});

// libtensorflow 2.21's two load-time lines, as it prints them (captured here), and lines that must survive
const ABSL = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR";
const ONEDNN =
  "I0000 00:00:1795797311.137827   30189 port.cc:153] oneDNN custom operations are on. You may see slightly different numerical results due to floating-point round-off errors from different computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.";

test("the native chatter filter drops exactly libtensorflow's two load-time lines", () => {
  const text = [ABSL, ONEDNN, "E0000 00:00:1.2 123 cpu_feature_guard.cc:1] a real error", "WARNING: something else", ""].join("\n");
  assert.deepEqual(withoutChatter(text), {
    kept: ["E0000 00:00:1.2 123 cpu_feature_guard.cc:1] a real error", "WARNING: something else"],
    dropped: [ABSL, ONEDNN],
  });
});

test("withNativeStderr captures file descriptor 2, writes back all but the chatter, and restores it", (t) => {
  if (packageDir("koffi", [ROOT]) === null) return t.skip("koffi is not installed: the load runs uncaptured");
  const code = [
    `const fs = require("node:fs");`,
    `const { withNativeStderr } = require("./lib/engine/native-chatter");`,
    `const r = withNativeStderr(() => { fs.writeSync(2, ${JSON.stringify(`${ABSL}\n${ONEDNN}\nkeep me\n`)}); return 42; });`,
    `fs.writeSync(2, "after\\n");`,
    `console.log(JSON.stringify(r));`,
    `try { withNativeStderr(() => { fs.writeSync(2, "before the throw\\n"); throw new Error("boom"); }); } catch (e) { console.log("threw " + e.message); }`,
    `fs.writeSync(2, "restored\\n");`,
  ].join("\n");
  const env = { ...process.env };
  delete env.COURSE_NATIVE_LOG;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, env, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, "keep me\nafter\nbefore the throw\nrestored\n");
  assert.equal(r.stdout, `${JSON.stringify({ result: 42, oneDNN: true })}\nthrew boom\n`);
});
