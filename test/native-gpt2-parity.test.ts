// Native engine (tensorflow), GPT-2-small size: a 124M-weight checkpoint in Hugging Face layout, written
// here from the deterministic weight formula (nothing committed), loaded through the library's loader,
// against PyTorch (test/reference/gpt2_small_reference.py -> fixtures/gpt2-small-golden.json):
// logits, log-sum-exp, the masked loss (within 1e-3) and one step's gradients.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as tf from "@tensorflow/tfjs";
import { GPTConfig } from "../lib/model/config";
import { GPTModel } from "../lib/model/gpt";
import { maskedCrossEntropy } from "../lib/train/loss";
import { loadGPT2Directory } from "../lib/weights/gpt2-directory";
import { DETERMINISTIC_WEIGHTS_VERSION, deterministicWeights } from "./helpers/deterministic-weights";
import { HFTensor, tempDir, writeHFDir } from "./helpers/hf-checkpoint";
import { startNativeEngine } from "./helpers/native-engine";
import { GoldenCommon, maxAbsDiff, readFixture } from "./helpers/golden";

/** fixtures/gpt2-small-golden.json: gradients as a slice at an offset of each tensor. */
interface Golden extends GoldenCommon {
  grads: Record<string, { offset: number; values: number[]; norm: number }>;
}

const g = readFixture<Golden>("gpt2-small-golden.json");
const LOSS_TOL = 1e-3;
const LOGIT_TOL = 1e-4; // logits here reach ~±10; measured 8e-6 (float32, 12 layers, two BLAS libraries)
const GRAD_REL_TOL = 1e-4;

/** The library's deterministic weights as a transformers GPT2LMHeadModel checkpoint (own lm_head). */
function hfTensors(cfg: GPTConfig): Map<string, HFTensor> {
  const w = deterministicWeights(cfg);
  const C = cfg.embDim;
  const get = (n: string) => w.get(n)!.values;
  const out = new Map<string, HFTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => out.set(name, { shape, data });
  put("wte.weight", [cfg.vocabSize, C], get("tokEmb.weight"));
  put("wpe.weight", [cfg.contextLength, C], get("posEmb.weight"));
  for (let i = 0; i < cfg.nLayers; i++) {
    const b = `blocks.${i}.`, h = `h.${i}.`;
    // c_attn is query | key | value side by side: (C, 3C), each row the three rows of (C, C)
    const qkv = new Float32Array(C * 3 * C);
    ["wQuery", "wKey", "wValue"].forEach((p, k) => {
      const m = get(`${b}att.${p}.weight`);
      for (let r = 0; r < C; r++) qkv.set(m.subarray(r * C, (r + 1) * C), r * 3 * C + k * C);
    });
    const qkvBias = new Float32Array(3 * C);
    ["wQuery", "wKey", "wValue"].forEach((p, k) => qkvBias.set(get(`${b}att.${p}.bias`), k * C));
    put(`${h}ln_1.weight`, [C], get(`${b}norm1.scale`));
    put(`${h}ln_1.bias`, [C], get(`${b}norm1.shift`));
    put(`${h}attn.c_attn.weight`, [C, 3 * C], qkv);
    put(`${h}attn.c_attn.bias`, [3 * C], qkvBias);
    put(`${h}attn.c_proj.weight`, [C, C], get(`${b}att.outProj.weight`));
    put(`${h}attn.c_proj.bias`, [C], get(`${b}att.outProj.bias`));
    put(`${h}ln_2.weight`, [C], get(`${b}norm2.scale`));
    put(`${h}ln_2.bias`, [C], get(`${b}norm2.shift`));
    put(`${h}mlp.c_fc.weight`, [C, 4 * C], get(`${b}ff.fc1.weight`));
    put(`${h}mlp.c_fc.bias`, [4 * C], get(`${b}ff.fc1.bias`));
    put(`${h}mlp.c_proj.weight`, [4 * C, C], get(`${b}ff.fc2.weight`));
    put(`${h}mlp.c_proj.bias`, [C], get(`${b}ff.fc2.bias`));
  }
  put("ln_f.weight", [C], get("finalNorm.scale"));
  put("ln_f.bias", [C], get("finalNorm.shift"));
  // lm_head is (V, C) in the checkpoint; the library's head is (C, V)
  const head = get("outHead.weight");
  const lm = new Float32Array(head.length);
  for (let c = 0; c < C; c++) for (let v = 0; v < cfg.vocabSize; v++) lm[v * C + c] = head[c * cfg.vocabSize + v];
  put("lm_head.weight", [cfg.vocabSize, C], lm);
  return out;
}

let skip: string | null = null;
let dir = "";
let model: GPTModel | null = null;

before(async () => {
  skip = await startNativeEngine();
  if (skip !== null) return;
  const cfg = g.config;
  dir = writeHFDir(tempDir("gpt2-small-parity"), hfTensors(cfg), {
    prefix: true,
    config: { model_type: "gpt2", vocab_size: cfg.vocabSize, n_positions: cfg.contextLength, n_ctx: cfg.contextLength, n_embd: cfg.embDim, n_layer: cfg.nLayers, n_head: cfg.nHeads, layer_norm_epsilon: 1e-5, activation_function: "gelu_new", tie_word_embeddings: false },
  });
  model = await loadGPT2Directory(dir);
});

after(() => {
  model?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("the fixture was made with this weight formula, at GPT-2 small's size", () => {
  assert.equal(g.formulaVersion, DETERMINISTIC_WEIGHTS_VERSION);
  assert.deepEqual([g.config.vocabSize, g.config.contextLength, g.config.embDim, g.config.nLayers, g.config.nHeads], [50257, 1024, 768, 12, 12]);
});

test("native engine, GPT-2 small from an HF checkpoint: logits, log-sum-exp and argmax match PyTorch", (t) => {
  if (skip !== null) return t.skip(skip);
  assert.equal(tf.getBackend(), "tensorflow");
  const m = model!;
  let worst = 0, worstLse = 0, argmax: number[][] = [];
  tf.tidy(() => {
    const logits = m.forward(tf.tensor2d(g.inputs, undefined, "int32")); // (B, T, V)
    let w = 0;
    for (const s of g.logitSlices) {
      const width = s.values[0][0].length;
      const got = logits.slice([0, 0, s.start], [-1, -1, width]).arraySync() as number[][][];
      w = Math.max(w, maxAbsDiff(got.flat(2), s.values.flat(2)));
    }
    const lse = tf.logSumExp(logits, -1).arraySync() as number[][];
    worst = w;
    worstLse = maxAbsDiff(lse.flat(), g.logsumexp.flat());
    argmax = tf.argMax(logits, -1).arraySync() as number[][];
  });
  t.diagnostic(`max |logit - torch| = ${worst.toExponential(2)}, max |logsumexp - torch| = ${worstLse.toExponential(2)}`);
  assert.ok(worst < LOGIT_TOL, `logits differ by ${worst}`);
  assert.ok(worstLse < LOGIT_TOL, `logsumexp differs by ${worstLse}`);
  const agree = argmax.flat().filter((v, i) => v === g.argmax.flat()[i]).length;
  assert.ok(agree >= argmax.flat().length - 1, `argmax agrees at ${agree} of ${argmax.flat().length} positions`);
});

test("native engine, GPT-2 small: the masked loss (within 1e-3) and one step's gradients match PyTorch", (t) => {
  if (skip !== null) return t.skip(skip);
  const m = model!;
  const inputs = tf.tensor2d(g.inputs, undefined, "int32");
  const targets = tf.tensor2d(g.targets, undefined, "int32");
  const { value, grads } = tf.variableGrads(() => maskedCrossEntropy(m.forward(inputs), targets));
  const loss = value.dataSync()[0];
  const byVar = new Map([...m.params].map(([n, v]) => [v.name, n]));
  const named = new Map(Object.entries(grads).map(([k, v]) => [byVar.get(k)!, v]));
  let worstSlice = 0;
  let worstNorm = 0;
  for (const [name, want] of Object.entries(g.grads)) {
    const got = named.get(name)!.dataSync<"float32">();
    const scale = Math.max(...want.values.map(Math.abs), 1e-12);
    worstSlice = Math.max(worstSlice, maxAbsDiff(Array.from(got.subarray(want.offset, want.offset + want.values.length)), want.values) / scale);
    let sq = 0;
    for (let i = 0; i < got.length; i++) sq += got[i] * got[i];
    worstNorm = Math.max(worstNorm, Math.abs(Math.sqrt(sq) - want.norm) / want.norm);
  }
  t.diagnostic(`loss ${loss.toFixed(6)} vs torch ${g.loss.toFixed(6)}; max grad slice diff / slice max = ${worstSlice.toExponential(2)}; max rel. grad-norm diff = ${worstNorm.toExponential(2)}`);
  assert.ok(Math.abs(loss - g.loss) < LOSS_TOL, `loss ${loss} vs ${g.loss}`);
  assert.ok(worstNorm < GRAD_REL_TOL, `gradient norms differ by ${worstNorm} (relative)`);
  assert.ok(worstSlice < 1e-3, `gradient slices differ by ${worstSlice} of their largest value`);
  tf.dispose([value, inputs, targets, ...Object.values(grads)]);
});
