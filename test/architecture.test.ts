// The folders of lib/ are the architecture, bottom to top; this test keeps them so.
// - a file imports only from its own folder or from folders below it;
// - no import cycles between files;
// - no file past MAX_LINES (a longer file holds two concepts);
// - no `X.ts` beside a folder `X/` (one concept in two places; use `X/index.ts`).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";

/** lib/'s folders, bottom to top. `index.ts` at the root is the public surface and may import any of them but cli. */
export const LAYERS = [
  "core", // errors, the seeded Rng, atomic file writes, the book's settings: used by every floor
  "engine", // which TensorFlow.js backend runs the tensors, and its kernel patches
  "data", // instruction data, prompts, tokenizer, collate, loaders
  "model", // the GPT architecture only
  "weights", // safetensors, the GPT-2 checkpoint names, config files
  "pretrained", // choosing and downloading a checkpoint
  "generate", // text generation
  "train", // loss, AdamW, the training loop, checkpoints
  "eval", // scoring a model's responses
  "datagen", // making new data with a larger model (preferences, instructions)
  "display", // notebook and terminal output, plots
  "serve", // the chat server and page, the OpenAI-compatible API
  "cli", // the command lines
] as const;
const MAX_LINES = 300;
const LIB = path.resolve(__dirname, "..", "lib");

type Graph = Map<string, string[]>; // file (relative to lib/) -> files it imports (relative to lib/)

function libFiles(dir = LIB): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules") continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...libFiles(p));
    else if (e.name.endsWith(".ts")) out.push(path.relative(LIB, p));
  }
  return out.sort();
}

function importGraph(files: string[]): Graph {
  const known = new Set(files);
  const g: Graph = new Map();
  const re = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\(\s*)["'](\.{1,2}\/[^"']*)["']/g;
  for (const f of files) {
    const src = fs.readFileSync(path.join(LIB, f), "utf8");
    const deps: string[] = [];
    for (const m of src.matchAll(re)) {
      const base = path.normalize(path.join(path.dirname(f), m[1]));
      const hit = [`${base}.ts`, path.join(base, "index.ts")].find((c) => known.has(c));
      assert.ok(hit, `${f}: import "${m[1]}" resolves to no file in lib/`);
      deps.push(hit);
    }
    g.set(f, deps);
  }
  return g;
}

const layerOf = (file: string): string => (file.includes(path.sep) ? file.split(path.sep)[0] : "");

/** Every import that runs from a lower folder up to a higher one, or touches an unknown folder. */
export function upwardImports(g: Graph): string[] {
  const rank = (f: string) => (layerOf(f) === "" ? LAYERS.length : LAYERS.indexOf(layerOf(f) as (typeof LAYERS)[number]));
  const bad: string[] = [];
  for (const [from, deps] of g) {
    if (rank(from) < 0) bad.push(`${from}: folder "${layerOf(from)}" is not one of the layers`);
    for (const to of deps) {
      if (rank(to) > rank(from) || (layerOf(from) === "" && layerOf(to) === "cli")) bad.push(`${from} -> ${to}`);
    }
  }
  return bad;
}

/** One cycle per strongly connected group found by depth-first search, as "a -> b -> a". */
export function cycles(g: Graph): string[] {
  const state = new Map<string, "open" | "done">();
  const found: string[] = [];
  const visit = (f: string, stack: string[]) => {
    state.set(f, "open");
    for (const d of g.get(f) ?? []) {
      if (state.get(d) === "open") found.push([...stack.slice(stack.indexOf(d)), f, d].join(" -> "));
      else if (!state.has(d)) visit(d, [...stack, f]);
    }
    state.set(f, "done");
  };
  for (const f of g.keys()) if (!state.has(f)) visit(f, []);
  return found;
}

test("the checker itself: it flags an upward import, a cycle, and an unknown folder", () => {
  const g: Graph = new Map([
    ["engine/a.ts", ["train/b.ts"]],
    ["train/b.ts", ["engine/a.ts"]],
    ["misc/c.ts", []],
  ]);
  assert.deepEqual(upwardImports(g), ["engine/a.ts -> train/b.ts", 'misc/c.ts: folder "misc" is not one of the layers']);
  assert.equal(cycles(g).length, 1);
  assert.deepEqual(upwardImports(new Map([["train/b.ts", ["engine/a.ts"]], ["engine/a.ts", []]])), []);
});

test("lib/: every file sits in a layer folder (index.ts aside), and no import runs upward", () => {
  const files = libFiles();
  const loose = files.filter((f) => layerOf(f) === "" && f !== "index.ts");
  assert.deepEqual(loose, [], "files at lib/'s root besides index.ts");
  assert.deepEqual(upwardImports(importGraph(files)), []);
});

test("lib/: no import cycles", () => {
  assert.deepEqual(cycles(importGraph(libFiles())), []);
});

test("lib/: the engine imports nothing from data, model, weights, generate or train", () => {
  const g = importGraph(libFiles());
  const bad = [...g].flatMap(([f, deps]) => (layerOf(f) === "engine" ? deps.filter((d) => !["core", "engine"].includes(layerOf(d))) : []));
  assert.deepEqual(bad, []);
});

test(`lib/: no file past ${MAX_LINES} lines, and no X.ts beside a folder X/`, () => {
  const files = libFiles();
  const long = files
    .map((f) => [f, fs.readFileSync(path.join(LIB, f), "utf8").split("\n").length] as const)
    .filter(([, n]) => n > MAX_LINES)
    .map(([f, n]) => `${f}: ${n} lines`);
  assert.deepEqual(long, []);
  const split = files.filter((f) => fs.existsSync(path.join(LIB, f.replace(/\.ts$/, ""))));
  assert.deepEqual(split, []);
});
