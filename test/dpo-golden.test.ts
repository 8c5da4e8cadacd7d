// DPO against the book's PyTorch code (test/reference/dpo_reference.py, ch07/04 re-written) on a policy and a
// reference with different deterministic weights: the collated batches exactly, the mean log-probabilities,
// the loss, the rewards, the policy's gradients and the loader means within 1e-4. Then what follows from the
// definitions: policy = reference gives ln 2 and margin 0; LoRA with its adapter off is the base model.
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs";
import { initEngine } from "../lib/engine";
import type { GPTConfig } from "../lib/model/config";
import { PreferenceDataset, PreferenceExample } from "../lib/data/preference-dataset";
import { collatePreference, PreferenceBatch, preferenceBatchTensors } from "../lib/data/preference-collate";
import type { PreferenceEntry } from "../lib/data/preference-data";
import { computeLogProbs } from "../lib/train/dpo-loss";
import { responseLogProbs } from "../lib/train/dpo-logprobs";
import { referenceFor, referenceLogProbs } from "../lib/train/dpo-reference";
import { dpoInputs, dpoLossBatch, dpoLossFromReference, dpoLossLoader } from "../lib/train/dpo-batch";
import { deterministicModel } from "./helpers/deterministic-weights";
import { maxAbsDiff, readFixture } from "./helpers/golden";

const TOL = 1e-4;

interface DPOGolden {
  config: GPTConfig;
  tiedHead: boolean;
  referenceSalt: string;
  beta: number;
  batchSize: number;
  entries: PreferenceEntry[];
  encoded: PreferenceExample[];
  expected: {
    batches: { chosen: number[][]; rejected: number[][]; chosen_mask: boolean[][]; rejected_mask: boolean[][] }[];
    firstBatchNoPromptMask: { chosen_mask: boolean[][]; rejected_mask: boolean[][] };
    logprobs: { policyChosen: number[]; policyRejected: number[]; referenceChosen: number[]; referenceRejected: number[] };
    policyChosenAllPositions: number[];
    loss: number;
    chosenRewards: number;
    rejectedRewards: number;
    grads: Record<string, { first?: number[]; row?: number; values?: number[]; norm: number }>;
    loader: { loss: number; chosenReward: number; rejectedReward: number };
  };
}

const g = readFixture<DPOGolden>("dpo-golden.json");
const policyModel = () => deterministicModel(g.config, { tiedHead: g.tiedHead });
const referenceModel = () => deterministicModel(g.config, { tiedHead: g.tiedHead, salt: g.referenceSalt });
const batches = (): PreferenceBatch[] =>
  [0, g.batchSize].map((i) => collatePreference(g.encoded.slice(i, i + g.batchSize), { allowedMaxLength: g.config.contextLength }));
const close = (got: ArrayLike<number>, want: ArrayLike<number>, what: string) => {
  const d = maxAbsDiff(got, want);
  assert.ok(d < TOL, `${what}: max |diff| ${d}`);
};

before(async () => {
  await initEngine({ log: () => {} });
});

test("the fixture's token ids are still what the library's PreferenceDataset gives", () => {
  assert.deepEqual(new PreferenceDataset(g.entries).encoded, g.encoded);
});

test("the collate function gives PyTorch's batches exactly (ids and masks; with and without the prompt masked)", () => {
  batches().forEach((b, i) => {
    const want = g.expected.batches[i];
    assert.deepEqual([b.chosen, b.rejected, b.chosenMask, b.rejectedMask], [want.chosen, want.rejected, want.chosen_mask, want.rejected_mask]);
  });
  const open = collatePreference(g.encoded.slice(0, g.batchSize), { maskPromptTokens: false });
  assert.deepEqual([open.chosenMask, open.rejectedMask], [g.expected.firstBatchNoPromptMask.chosen_mask, g.expected.firstBatchNoPromptMask.rejected_mask]);
});

test("mean log-probabilities: the book's computeLogProbs and the library's responseLogProbs both give PyTorch's", () => {
  const [policy, reference] = [policyModel(), referenceModel()];
  const b = batches()[0];
  const t = preferenceBatchTensors(b);
  const want = g.expected.logprobs;
  for (const [model, chosen, rejected, who] of [[policy, want.policyChosen, want.policyRejected, "policy"], [reference, want.referenceChosen, want.referenceRejected, "reference"]] as const) {
    close(computeLogProbs(model.forward(t.chosen), t.chosen, t.chosenMask).dataSync(), chosen, `${who} chosen (computeLogProbs)`);
    close(computeLogProbs(model.forward(t.rejected), t.rejected, t.rejectedMask).dataSync(), rejected, `${who} rejected (computeLogProbs)`);
    const inputs = dpoInputs(b, g.config.vocabSize);
    close(responseLogProbs(model, inputs.ids, inputs.scored).dataSync(), [...chosen, ...rejected], `${who} (responseLogProbs)`);
  }
  close(computeLogProbs(policy.forward(t.chosen), t.chosen).dataSync(), g.expected.policyChosenAllPositions, "without a mask: every position");
  tf.disposeVariables();
});

test("the DPO loss and the mean chosen and rejected rewards of a batch", () => {
  const policy = policyModel();
  const parts = dpoLossBatch(policy, referenceFor(policy, referenceModel()), batches()[0], g.beta);
  close([parts.loss.dataSync()[0], parts.chosenRewards.dataSync()[0], parts.rejectedRewards.dataSync()[0]], [g.expected.loss, g.expected.chosenRewards, g.expected.rejectedRewards], "loss, rewards");
  tf.disposeVariables();
});

test("the policy's gradients (the reference gets none)", () => {
  const policy = policyModel();
  const reference = referenceFor(policy, referenceModel());
  const inputs = dpoInputs(batches()[0], g.config.vocabSize);
  const ref = tf.tidy(() => referenceLogProbs(reference, policy, inputs.ids, inputs.scored));
  const names = Object.keys(g.expected.grads);
  const vars = names.map((n) => policy.param(n));
  const { grads } = tf.variableGrads(() => dpoLossFromReference(policy, inputs, ref, g.beta, true).loss, vars);
  names.forEach((n, i) => {
    const got = Array.from(grads[vars[i].name].dataSync());
    const want = g.expected.grads[n];
    const norm = Math.sqrt(got.reduce((s, x) => s + x * x, 0));
    assert.ok(Math.abs(norm - want.norm) < TOL * Math.max(1, want.norm), `${n}: gradient norm ${norm} vs ${want.norm}`);
    if (want.first) close(got.slice(0, want.first.length), want.first, `${n}: first values`);
    if (want.values) close(got.slice(want.row! * g.config.embDim, (want.row! + 1) * g.config.embDim), want.values, `${n}: row ${want.row}`);
  });
  assert.ok([...(reference as ReturnType<typeof referenceModel>).params.values()].every((v) => !v.trainable), "the reference is frozen");
  tf.disposeVariables();
});

test("the loss and rewards over a loader (the book's compute_dpo_loss_loader): means over the two batches", async () => {
  const policy = policyModel();
  const got = await dpoLossLoader(batches(), policy, referenceFor(policy, referenceModel()), g.beta);
  close([got.loss, got.chosenReward, got.rejectedReward], [g.expected.loader.loss, g.expected.loader.chosenReward, g.expected.loader.rejectedReward], "loader means");
  const none = await dpoLossLoader([], policy, referenceFor(policy, referenceModel()), g.beta);
  assert.ok(Number.isNaN(none.loss), "no batch gives NaN, as the book's float('nan')");
  tf.disposeVariables();
});

test("policy = reference (a copy of the same weights): loss ln 2, rewards and margin 0", async () => {
  const policy = policyModel();
  const got = await dpoLossLoader(batches(), policy, referenceFor(policy, policyModel()), g.beta);
  assert.ok(Math.abs(got.loss - Math.log(2)) < 1e-6, `loss ${got.loss}`);
  assert.ok(Math.abs(got.chosenReward) < 1e-6 && Math.abs(got.rejectedReward) < 1e-6, `rewards ${got.chosenReward}, ${got.rejectedReward}`);
  tf.disposeVariables();
});

test("LoRA: with its adapter off the policy is the reference (ln 2 at the start); once B moves, the loss is the merged model's against the base", async () => {
  const policy = policyModel();
  const adapter = policy.applyLoRA({ rank: 2, alpha: 4, seed: 5 });
  const reference = referenceFor(policy);
  assert.equal(reference, "adapter-off");
  const start = await dpoLossLoader(batches(), policy, reference, g.beta);
  assert.ok(Math.abs(start.loss - Math.log(2)) < 1e-6, `LoRA at the start: ${start.loss}`);
  for (const layer of adapter.layers.values()) layer.B.assign(tf.randomNormal(layer.B.shape, 0, 0.3, "float32", 9));
  const lora = await dpoLossLoader(batches(), policy, reference, g.beta);
  assert.ok(Math.abs(lora.loss - Math.log(2)) > 1e-3, `the adapter changed nothing: ${lora.loss}`);
  policy.mergeLoRA(); // W + (alpha/r)·A@B, a plain model again
  const merged = await dpoLossLoader(batches(), policy, referenceFor(policy, policyModel()), g.beta);
  close([lora.loss, lora.chosenReward, lora.rejectedReward], [merged.loss, merged.chosenReward, merged.rejectedReward], "LoRA/adapter-off vs merged/base");
  tf.disposeVariables();
});

test("a reference of another shape, or none at all, is a one-line ConfigError", () => {
  const policy = policyModel();
  const other = deterministicModel({ ...g.config, embDim: 8 }, {});
  assert.throws(() => referenceFor(policy, other), /^ConfigError: the reference model \(vocabSize 50257, contextLength 128, embDim 8, .*\) is not the policy's architecture \(.*embDim 16.*\): embDim differ$/);
  assert.throws(() => referenceFor(policy), /^ConfigError: DPO needs a reference model/);
  assert.throws(() => referenceFor(policy, policy), /not the policy itself/);
  tf.disposeVariables();
});
