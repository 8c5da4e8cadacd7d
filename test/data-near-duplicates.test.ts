// The book's near-duplicate finder (ch07/02): our TF-IDF over character 1-3-grams against
// scikit-learn's (test/reference/near_duplicates_reference.py) on the book's own example file
// (test/fixtures/instruction-examples.json), on the chapter's 1,100 entries and on generated files
// full of Unicode that Python and JavaScript treat differently; the printout byte for byte, the
// removal, and the command line's errors.
import { test, after, TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { charNgrams, cosineSimilarity, tfidfVectors } from "../lib/data/tfidf";
import { findNearDuplicates, formatSimilarity, nearDuplicateReport, preprocessText, searchNearDuplicates, TextEntry } from "../lib/data/near-duplicates";
import { DEFAULT_DATA_FILE } from "../lib/data/instruction-data";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");
const REFERENCE = path.join(__dirname, "reference", "near_duplicates_reference.py");
const EXAMPLES = path.join(__dirname, "fixtures", "instruction-examples.json");
const VENV_PYTHON = path.join(ROOT, ".cache", "venv", "bin", "python");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "near-duplicates-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A Python with scikit-learn: $COURSE_HF_PYTHON, else the venv .ci/run makes; null if neither has it. */
function sklearnPython(): string | null {
  for (const py of [process.env.COURSE_HF_PYTHON, VENV_PYTHON]) {
    if (py && spawnSync(py, ["-c", "import sklearn"], { stdio: "ignore" }).status === 0) return py;
  }
  return null;
}
const PYTHON = sklearnPython();
function needPython(t: TestContext): string | null {
  if (PYTHON) return PYTHON;
  const why = "no Python with scikit-learn (set COURSE_HF_PYTHON, or make .cache/venv as .ci/run does)";
  if (process.env.CI === "true") assert.fail(why);
  t.skip(why);
  return null;
}

interface RefField { field: string; rows: number[]; matrix: number[][]; pairs: [number, number, number][] }
function reference(python: string, threshold: number, files: string[]): { fields: RefField[]; report: string }[] {
  const r = spawnSync(python, [REFERENCE, String(threshold), ...files], { encoding: "utf8", maxBuffer: 1 << 28, timeout: 240_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split("\n").map((line) => JSON.parse(line));
}

function cli(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TSX, [path.join(ROOT, "lib", "cli", "near-duplicates.ts"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Our similarity matrix for one field's non-empty texts, and every cell against scikit-learn's. */
function assertMatrixMatches(entries: TextEntry[], ref: RefField, where: string): void {
  const rows = entries.flatMap((e, i) => (e[ref.field] ? [i] : []));
  assert.deepEqual(rows, ref.rows, `${where}: the texts compared`);
  const vectors = tfidfVectors(rows.map((i) => preprocessText(entries[i][ref.field] as string)));
  let worst = 0;
  for (let a = 0; a < rows.length; a++) {
    for (let b = 0; b < rows.length; b++) worst = Math.max(worst, Math.abs(cosineSimilarity(vectors[a], vectors[b]) - ref.matrix[a][b]));
  }
  // the bar is 2 decimals; the sums differ only in their order, so far closer
  assert.ok(worst < 1e-12, `${where}: field ${ref.field}: largest difference from scikit-learn ${worst}`);
}

test("preprocessing and n-grams as Python and scikit-learn make them", () => {
  assert.equal(preprocessText("What's the capital city of Italy?"), "whats the capital city of italy");
  assert.equal(preprocessText("snake_case, 3.5 °C — «ok»"), "snake_case 35 c  ok");
  assert.equal(preprocessText("e\u0301\u00e9"), "e\u00e9"); // a combining accent is not \w in Python; é is
  assert.deepEqual(charNgrams("ab  c"), ["a", "b", " ", "c", "ab", "b ", " c", "ab ", "b c"]); // two spaces -> one
  assert.deepEqual(charNgrams("a\nb"), ["a", "\n", "b", "a\n", "\nb", "a\nb"]); // one whitespace character stays as it is
  assert.deepEqual(charNgrams("😀x"), ["😀", "x", "😀x"]); // code points, not UTF-16 halves
});

test("the similarity is printed as Python's :.2f (ties to even), not toFixed's", () => {
  assert.equal(formatSimilarity(0.125), "0.12");
  assert.equal(formatSimilarity(0.375), "0.38");
  assert.equal(formatSimilarity(0.9449), "0.94");
  assert.equal(formatSimilarity(1.0000000000000002), "1.00");
  assert.equal((0.125).toFixed(2), "0.13", "toFixed rounds ties up, which is why formatSimilarity exists");
});

test("each text keeps its own entry when some are empty (the book's script names the wrong ones here)", () => {
  const entries = [
    { instruction: "Translate the sentence.", input: "", output: "A" },
    { instruction: "Name a colour.", input: "The cat sleeps on the couch.", output: "Blue." },
    { instruction: "Name a planet.", input: "The cat sleeps on the couch!", output: "Mars." },
  ];
  const pairs = findNearDuplicates(entries, "input");
  assert.deepEqual(pairs.map((p) => [p.firstIndex, p.secondIndex]), [[1, 2]]);
  assert.ok(Math.abs(pairs[0].similarity - 1) < 1e-12, "the same text after punctuation is removed");
  // one-character texts are never reported, and removal drops the second of an input/output pair only
  const { kept, searches } = searchNearDuplicates([...entries, { instruction: "Name a planet.", input: "x", output: "x" }], { remove: true });
  assert.deepEqual(searches.map((s) => [s.field, s.pairs.length]), [["instruction", 1], ["input", 1], ["output", 0]]);
  assert.deepEqual(kept.map((e) => e.output), ["A", "Blue.", "x"]);
});

test("on the book's example file: every similarity, the pairs and the printout equal scikit-learn's", (t) => {
  const python = needPython(t);
  if (!python) return;
  const entries = JSON.parse(fs.readFileSync(EXAMPLES, "utf8")) as TextEntry[];
  assert.equal(entries.length, 200);
  const [ref] = reference(python, 0.75, [EXAMPLES]);
  for (const f of ref.fields) {
    assertMatrixMatches(entries, f, "instruction-examples.json");
    const ours = findNearDuplicates(entries, f.field, 0.75);
    assert.deepEqual(ours.map((p) => [p.firstIndex, p.secondIndex]), f.pairs.map(([a, b]) => [a, b]), `pairs in ${f.field}`);
  }
  const r = cli(["--data", EXAMPLES]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, ref.report, "the printout, byte for byte");
  assert.match(r.stdout, /Duplicate pair found with similarity 0\.94:\n1\. Edit the following sentence to make it more formal\.\n2\. Edit the sentence to make it more formal\.\n/);
});

test("on the chapter's 1,100 entries: the same pairs as scikit-learn, the same printout, the same removal", (t) => {
  const python = needPython(t);
  if (!python) return;
  const [ref] = reference(python, 0.75, [DEFAULT_DATA_FILE]);
  const printed = cli(["--data", DEFAULT_DATA_FILE]);
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(printed.stdout, ref.report);
  // with removal, each field is searched in what the fields before it left (the book's order)
  const r = cli(["--data", DEFAULT_DATA_FILE, "--remove-duplicates", "--out", path.join(tmp, "dedup.json")]);
  assert.equal(r.code, 0, r.stderr);
  const removed = spawnSync(python, [REFERENCE, "--remove", "0.75", DEFAULT_DATA_FILE], { encoding: "utf8", maxBuffer: 1 << 26 });
  assert.equal(removed.status, 0, removed.stderr);
  const kept = JSON.parse(fs.readFileSync(path.join(tmp, "dedup.json"), "utf8"));
  assert.deepEqual(kept, JSON.parse(removed.stdout));
  assert.match(r.stderr, new RegExp(`removed ${1100 - kept.length} of 1100 entries`));
  assert.ok(kept.length < 1100, "the chapter's data has near-duplicate outputs");
});

test("on generated files full of Unicode edge cases, every similarity equals scikit-learn's", (t) => {
  const python = needPython(t);
  if (!python) return;
  // characters where Python's \w, \s, lower() or len() could part ways with JavaScript's
  const tricky = ["a", "b", "A", "É", "e\u0301", "ß", "İ", "Σ", "σ", "ς", "_", "-", ".", "'", "’", "5", "²", "½", "Ⅻ", "٣", " ", "  ", "\t", "\n", "\u00a0", "\u2003", "\u3000", "\u0085", "\u001c", "\ufeff", "😀", "𝔸", "中", "文", "ǅ", "ﬁ", "\u200b"];
  const text = fc.array(fc.constantFrom(...tricky), { maxLength: 14 }).map((cs) => cs.join(""));
  const files = fc.sample(fc.array(fc.record({ instruction: text, input: text, output: text }), { minLength: 2, maxLength: 25 }), { numRuns: 12, seed: 2207 });
  const paths = files.map((entries, k) => {
    const p = path.join(tmp, `generated-${k}.json`);
    fs.writeFileSync(p, JSON.stringify(entries));
    return p;
  });
  const refs = reference(python, 0.5, paths);
  refs.forEach((ref, k) => {
    for (const f of ref.fields) {
      if (f.rows.length === 0 || f.matrix.length === 0) continue;
      // scikit-learn refuses a field whose texts have no characters left at all; ours gives zeros there
      assertMatrixMatches(files[k] as unknown as TextEntry[], f, `generated-${k}.json`);
    }
    assert.equal(searchNearDuplicates(files[k] as unknown as TextEntry[], { threshold: 0.5 }).searches.map(nearDuplicateReport).join(""), ref.report, `generated-${k}.json: printout`);
  });
});

test("the command line: one-line errors for a missing file, a bad threshold, a field that is not text", () => {
  const missing = cli(["--data", path.join(tmp, "nope.json")]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^error: .*nope\.json: no such file\n$/);
  const threshold = cli(["--data", EXAMPLES, "--threshold", "1.5"]);
  assert.equal(threshold.code, 1);
  assert.match(threshold.stderr, /^error: --threshold must be a number from 0 to 1, got "1\.5"\n$/);
  const bad = path.join(tmp, "bad.json");
  fs.writeFileSync(bad, JSON.stringify([{ instruction: "a b", input: "", output: "c d" }, { instruction: "a b", input: 3, output: "c d" }]));
  const typed = cli(["--data", bad]);
  assert.equal(typed.code, 1);
  assert.match(typed.stderr, /^error: .*bad\.json: entry 1: field "input" must be a string/);
  const self = cli(["--data", bad, "--remove-duplicates", "--out", bad]);
  assert.equal(self.code, 1);
  assert.match(self.stderr, /is the --data file itself/);
});
