// The command line, spawned as a user would: finetune a very small model on 40 entries
// (a JSON config via --model, the tests-only way to pick a micro model), then evaluate and
// generate with what it saved; errors are one `error:` line and exit code 1.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "..");
const TSX = path.join(ROOT, "node_modules", ".bin", "tsx");

function cli(name: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(TSX, [path.join(ROOT, "lib", "cli", `${name}.ts`), ...args], {
    cwd: ROOT,
    encoding: "utf8",
    env: { ...process.env, HF_HUB_OFFLINE: "1", COURSE_NO_STATIC_IMAGE: "1" },
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "cli-finetune-"));
const configFile = path.join(tmp, "micro.json");
fs.writeFileSync(configFile, JSON.stringify({ embDim: 8, nLayers: 1, nHeads: 2, contextLength: 256 }));
const out = path.join(tmp, "run");
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const finetuneArgs = [
  "--model", configFile, "--limit", "40", "--epochs", "1", "--batch-size", "4",
  "--eval-freq", "3", "--eval-iter", "1", "--lr", "0.005", "--response-tokens", "3", "--out", out,
];

test("finetune --limit 40 on a micro config writes history, plot, responses and model", () => {
  const r = cli("finetune", finetuneArgs);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^engine: /m);
  assert.match(r.stdout, /40 entries -> train 34, val 2, test 4/);
  // 34 train entries / batch 4, drop_last: 8 steps; evaluations after steps 0, 3, 6
  const evalLines = r.stdout.split("\n").filter((l) => l.startsWith("Ep "));
  assert.deepEqual(evalLines.map((l) => l.slice(0, 18)), ["Ep 1 (Step 000000)", "Ep 1 (Step 000003)", "Ep 1 (Step 000006)"]);
  const history = JSON.parse(fs.readFileSync(path.join(out, "loss-history.json"), "utf8"));
  assert.deepEqual(history.steps, [0, 3, 6]);
  assert.equal(history.trainLosses.length, 3);
  assert.ok(history.trainLosses[2] < history.trainLosses[0], `loss did not fall: ${history.trainLosses}`);
  const html = fs.readFileSync(path.join(out, "loss-plot.html"), "utf8");
  assert.ok(html.includes("Training loss") && !/<script src=/.test(html), "the HTML plot must inline plotly");
  assert.match(r.stdout, /no loss-plot\.png: static image disabled/);
  const responses = JSON.parse(fs.readFileSync(path.join(out, "instruction-data-with-response.json"), "utf8"));
  assert.equal(responses.length, 4);
  for (const e of responses) assert.deepEqual(Object.keys(e), ["instruction", "input", "output", "model_response"]);
  assert.ok(fs.existsSync(path.join(out, "model", "model.safetensors")));
  const claim = JSON.parse(fs.readFileSync(path.join(out, "run.json"), "utf8"));
  assert.ok(claim.command.includes("--limit") && claim.startedAt, "run.json records the command that made the folder");
});

test("finetune --prompt-style phi3 --mask-instructions (exercises 7.1, 7.2) runs end to end; loss and generate take the same style", () => {
  const phiOut = path.join(tmp, "run-phi3");
  const r = cli("finetune", [...finetuneArgs.slice(0, -2), "--out", phiOut, "--prompt-style", "phi3", "--mask-instructions", "--allowed-max-length", "200"]);
  assert.equal(r.code, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /^prompt style: phi3; instruction and input masked in the targets \(only the response is scored\)$/m);
  const history = JSON.parse(fs.readFileSync(path.join(phiOut, "loss-history.json"), "utf8"));
  assert.deepEqual(history.steps, [0, 3, 6]);
  assert.equal(history.options.promptStyle, "phi3");
  assert.equal(history.options.maskInstructions, true);
  assert.ok(history.trainLosses.every(Number.isFinite));
  const responses = JSON.parse(fs.readFileSync(path.join(phiOut, "instruction-data-with-response.json"), "utf8"));
  assert.equal(responses.length, 4);
  for (const e of responses) assert.ok(!e.model_response.includes("<|assistant|>:"), "the Phi-3 header is taken out of the response");
  const weights = path.join(phiOut, "model");
  const masked = cli("loss", ["--weights", weights, "--split", "val", "--prompt-style", "phi3", "--mask-instructions"]);
  const full = cli("loss", ["--weights", weights, "--split", "val", "--prompt-style", "phi3"]);
  assert.equal(masked.code, 0, masked.stderr);
  assert.notEqual(masked.stdout, full.stdout, "the loss over the responses alone is another number");
  const g = cli("generate", ["--weights", weights, "--instruction", "Name a color.", "--max-new-tokens", "3", "--prompt-style", "phi3"]);
  assert.equal(g.code, 0, g.stderr);
});

test("a run that fails before training leaves no run folder behind", () => {
  const failed = path.join(tmp, "failed-run");
  const r = cli("finetune", [...finetuneArgs.slice(0, -2), "--data", path.join(tmp, "no-such-data.json"), "--out", failed]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: .*no-such-data\.json: no such file/m);
  assert.ok(!fs.existsSync(failed), "the folder must not be created (a retry would be refused as not empty)");
});

test("an existing run folder is not overwritten without --force", () => {
  const r = cli("finetune", finetuneArgs);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error: --out .*not empty.*--force/m);
  assert.ok(!r.stderr.includes("    at "), "no stack trace");
});

test("loss prints `loss: <number>` for the saved model; evaluate, its old name, prints the same after one line saying so; generate prints only the response", () => {
  const e = cli("loss", ["--weights", path.join(out, "model"), "--split", "val"]);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /^loss: \d+\.\d+\n$/);
  const alias = cli("evaluate", ["--weights", path.join(out, "model"), "--split", "val"]);
  assert.equal(alias.code, 0, alias.stderr);
  assert.equal(alias.stdout, e.stdout);
  assert.match(alias.stderr, /^note: `npm run evaluate` is `npm run loss`: it computes the model's loss on the data; `npm run judge` scores responses \(section 7\.8\)$/m);
  const g = cli("generate", ["--weights", path.join(out, "model"), "--instruction", "Name a color.", "--max-new-tokens", "4"]);
  assert.equal(g.code, 0, g.stderr);
  assert.ok(!g.stdout.includes("engine:"), "the engine line goes to stderr");
  assert.match(g.stderr, /^engine: /m);
  assert.equal(g.stdout.split("\n").length <= 6, true);
});

test("bad input: one `error:` line, exit 1, no stack trace", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["generate", ["--weights", path.join(tmp, "missing"), "--prompt", "x"], /^error: .*missing/m],
    ["generate", ["--weights", path.join(out, "model")], /^error: give either --instruction/m],
    ["loss", ["--weights", path.join(out, "model"), "--split", "nope"], /^error: --split/m],
    ["finetune", ["--model", "gpt9", "--out", path.join(tmp, "x")], /^error: unknown model "gpt9"/m],
    // a bad number: the same one line for every command (cli/common.ts's parsers)
    ["finetune", ["--epochs", "0"], /^error: --epochs must be an integer >= 1, got "0"$/m],
    ["finetune", ["--prompt-style", "chatml"], /^error: --prompt-style must be one of alpaca, phi3, got "chatml"$/m],
    ["finetune", ["--model", configFile, "--limit", "40", "--allowed-max-length", "300", "--out", path.join(tmp, "too-long")], /^error: --allowed-max-length 300 is longer than the model's context length \(256 tokens\)$/m],
    ["generate", ["--weights", path.join(out, "model"), "--prompt", "x", "--temperature", "hot"], /^error: --temperature must be a number >= 0, got "hot"$/m],
    ["loss", ["--weights", path.join(out, "model"), "--backend", "gpu9"], /^error: --backend must be one of auto, tensorflow, webgpu, wasm, cpu, got "gpu9"$/m],
  ];
  for (const [name, args, pattern] of cases) {
    const r = cli(name, args);
    assert.equal(r.code, 1, `${name} ${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.ok(!r.stderr.includes("    at "), `${name}: no stack trace`);
  }
});

test("--help works on every command", () => {
  for (const name of ["finetune", "loss", "evaluate", "generate", "judge"]) {
    const r = cli(name, ["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: /);
    assert.ok(!r.stdout.includes("--response-tokens") && !r.stdout.includes("--retry-delay-ms"), "the tests-only options stay hidden");
  }
});
