// The key outputs each notebook must show, by notebook number. A check finds its cell by tag
// (cell metadata "tags"), so moving cells around does not break it, and throws when the output is wrong.
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import { DEFAULT_DATA_FILE, parseInstructionData } from "../../lib/data/instruction-data";
import { findNearDuplicates, searchNearDuplicates } from "../../lib/data/near-duplicates";
import { compact, ExecutedNotebook } from "./notebook";

export interface NotebookCheck {
  name: string;
  test(nb: ExecutedNotebook): void;
}

/** The cell's text output contains every snippet, compared with whitespace removed. */
const shows = (tag: string, ...snippets: string[]) => (nb: ExecutedNotebook) => {
  const text = compact(nb.text(tag));
  for (const s of snippets) assert.ok(text.includes(compact(s)), `cell "${tag}" does not show ${s}\n  it shows: ${nb.text(tag).slice(0, 600)}`);
};

export const CHECKS: Record<string, NotebookCheck[]> = {};

CHECKS["01"] = [
  { name: "loads the 1,100 entries", test: shows("count", "Number of entries: 1100") },
  { name: "shows entry 50", test: shows("entry-50", "instruction: 'Identify the correct spelling of the following word.'", "input: 'Ocassion'") },
  { name: "shows entry 999 (no input)", test: shows("entry-999", `instruction: "What is an antonym of 'complicated'?"`, "input: ''") },
  {
    name: "formats entry 50 as the book prints it (with ### Input:)",
    test: (nb) =>
      assert.equal(
        nb.text("prompt-50").trimEnd(),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
          "### Instruction:\nIdentify the correct spelling of the following word.\n\n### Input:\nOcassion\n\n" +
          "### Response:\nThe correct spelling is 'Occasion.'",
      ),
  },
  {
    name: "formats entry 999 as the book prints it (no ### Input:)",
    test: (nb) =>
      assert.equal(
        nb.text("prompt-999").trimEnd(),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
          "### Instruction:\nWhat is an antonym of 'complicated'?\n\n### Response:\nAn antonym of 'complicated' is 'simple'.",
      ),
  },
  {
    name: "renders the danfojs tables as HTML",
    test: (nb) => {
      assert.match(nb.html("table-entries"), /<table[\s\S]*Ocassion[\s\S]*<\/table>/);
      assert.match(nb.html("table-lengths"), /<table[\s\S]*<th[^>]*>count<\/th>(<td[^>]*>1100<\/td>){4}/);
    },
  },
  { name: "splits 935 / 55 / 110", test: shows("split-sizes", "Training set length: 935", "Validation set length: 55", "Test set length: 110") },
  {
    name: "counts the near-duplicate pairs of each field, as the finder does (the finder itself is checked against scikit-learn)",
    test: (nb) => {
      const data = parseInstructionData(fs.readFileSync(DEFAULT_DATA_FILE, "utf8"), DEFAULT_DATA_FILE);
      const lines = ["instruction", "input", "output"].map((f) => `${f}: ${findNearDuplicates(data, f).length} near-duplicate pairs`);
      shows("near-duplicates", ...lines, `${searchNearDuplicates(data, { remove: true }).kept.length} of 1100 entries would be kept`)(nb);
      shows("near-duplicate-examples", "The same task on the same input (similarity 1.00)", "The same input, another task (similarity 1.00)", "The two most similar outputs")(nb);
    },
  },
];

// The book's toy batch [0,1,2,3,4], [5,6], [7,8,9] after collation (section 7.3)
const TOY_INPUTS = "[[0,1,2,3,4],[5,6,50256,50256,50256],[7,8,9,50256,50256]]";
const TOY_TARGETS_DRAFT2 = "[[1,2,3,4,50256],[6,50256,50256,50256,50256],[8,9,50256,50256,50256]]";
const TOY_TARGETS = "[[1,2,3,4,50256],[6,50256,-100,-100,-100],[8,9,50256,-100,-100]]";

CHECKS["02"] = [
  { name: "<|endoftext|> is 50256", test: shows("eot", "[ 50256 ]") },
  { name: "draft 1 pads the toy batch as the book does", test: shows("draft1", TOY_INPUTS) },
  { name: "shows the padded batch before the cut (6 wide)", test: shows("padded", "[0,1,2,3,4,50256]", "[5,6,50256,50256,50256,50256]") },
  { name: "draft 2 gives the book's inputs and shifted targets", test: shows("draft2", TOY_INPUTS + "Tensor" + TOY_TARGETS_DRAFT2) },
  { name: "the final version masks padding after the first end-of-text with -100", test: shows("final-draft", TOY_INPUTS + "Tensor" + TOY_TARGETS) },
  {
    name: "the library's collate and drafts agree with the cell drafts",
    test: shows("library", TOY_INPUTS + "Tensor" + TOY_TARGETS, "draft 1 agrees with collateDraft1: true", "draft 2 agrees with collateDraft2: true", "final version agrees with collate: true"),
  },
  { name: "allowedMaxLength 3 cuts inputs and targets", test: shows("max-length", "[[0,1,2],[5,6,50256],[7,8,9]]", "[[1,2,3],[6,50256,-100],[8,9,50256]]", "agrees with the cell version: true") },
  { name: "cross-entropy of 2 positions = 1.1269", test: shows("ce-1", "loss_1 (cell): 1.1269", "loss_1 (library): 1.1269") },
  { name: "cross-entropy of 3 positions = 0.7936", test: shows("ce-2", "loss_2: 0.7936") },
  { name: "with the third target -100 the loss is 1.1269 again", test: shows("ce-3", "loss_3: 1.1269", "loss_3 (cell): 1.1269", "loss_1 == loss_3: true") },
];

CHECKS["03"] = [
  { name: "tokenizes 935 / 55 / 110 texts", test: shows("datasets", "tokenized texts: 935 train, 55 validation, 110 test") },
  { name: "the book's loaders: 116 / 7 / 14 batches", test: shows("loaders", "batches per epoch: 116 train, 7 validation, 14 test") },
  {
    name: "every training batch is 8 × its own length, not all the same",
    test: (nb) => {
      const shapes = nb.text("shapes").match(/\d+×\d+/g) ?? [];
      assert.equal(shapes.length, 116, `expected 116 batch shapes, found ${shapes.length}`);
      assert.ok(shapes.every((s) => s.startsWith("8×")), "a batch without 8 rows");
      const widths = new Set(shapes.map((s) => Number(s.split("×")[1])));
      assert.ok(widths.size > 5 && Math.max(...widths) <= 91, `widths ${[...widths].join(",")}`);
    },
  },
  {
    name: "the first input ends in padding, its targets keep one 50256 and mask the rest with -100",
    test: (nb) => {
      const [inputs, targets] = nb.text("first-batch").split("targets[0]");
      const ids = (s: string) => s.split("\n").slice(1).join(" ").trim().split(/\s+/).map(Number);
      const inp = ids(inputs);
      const tgt = ids(targets);
      assert.equal(inp.length, tgt.length, "inputs and targets differ in length");
      assert.deepEqual(tgt.slice(0, -1).filter((t) => t !== -100), inp.slice(1).filter((t, i) => tgt[i] !== -100), "targets are not the inputs shifted by one");
      const firstPad = tgt.indexOf(50256);
      assert.ok(firstPad > 0 && tgt.slice(firstPad + 1).every((t) => t === -100) && tgt.includes(-100), `targets: ${tgt.join(" ")}`);
    },
  },
  {
    name: "padding: plain vs length-grouped, as a table",
    test: (nb) => {
      assert.match(nb.text("padding"), /plain batches: \d+\.\d% padding; length-grouped: \d+\.\d%/);
      assert.match(nb.html("padding"), /<table[\s\S]*length-grouped/);
    },
  },
  {
    name: "the padding chart is a plotly figure with a static image",
    test: (nb) => {
      assert.equal(nb.mime("padding-chart", "application/vnd.course.figure+json").length, 1, "no plotly output");
      const png = nb.mime("padding-chart", "image/png");
      // Off CI, a machine without Chromium gets the chart without its static image, and the output says why
      const why = /no static image: (.*)>/.exec(nb.text("padding-chart"));
      if (png.length === 0 && why && !process.env.CI) return console.log(`    (no static image here: ${why[1]}; CI requires it)`);
      assert.ok(png.length === 1 && png[0].length > 5000, "no static PNG of the chart (is chromium installed?)");
    },
  },
];

/** 04–06 run offline on the random tiny model (the harness's setting) or on pretrained GPT-2 when it is there. */
const offline = (nb: ExecutedNotebook, tag: string) => /NOT pretrained/.test(nb.text(tag));

/** The chart cell carries a plotly figure and, on CI, its static PNG (as for notebook 03). */
const chartWithImage = (tag: string) => (nb: ExecutedNotebook) => {
  assert.equal(nb.mime(tag, "application/vnd.course.figure+json").length, 1, "no plotly output");
  const png = nb.mime(tag, "image/png");
  const why = /no static image: (.*)>/.exec(nb.text(tag));
  if (png.length === 0 && why && !process.env.CI) return console.log(`    (no static image here: ${why[1]}; CI requires it)`);
  assert.ok(png.length === 1 && png[0].length > 5000, "no static PNG of the chart (is chromium installed?)");
};

/** A progress display that finished: "label  n/n  100%". */
const finishedBar = (tag: string, label: string) => (nb: ExecutedNotebook) =>
  assert.match(nb.text(tag), new RegExp(`${label}\\s+(\\d+)/\\1\\s+100%`), `cell "${tag}" has no finished "${label}" progress bar`);

const PASSIVE = "Convert the active sentence to passive: 'The chef cooks the meal every day.'";

CHECKS["04"] = [
  {
    name: "chooses a model; without GPT-2, the tiny model and a NOT PRETRAINED banner saying why and how to get it",
    test: (nb) => {
      if (!offline(nb, "choose")) return shows("choose", "model: gpt2-medium (355M), pretrained")(nb);
      shows("choose", "NOT PRETRAINED", "RANDOM weights", "Why:", "To get the real weights", "model.safetensors", "model: tiny, NOT pretrained")(nb);
      assert.ok(nb.text("choose").split("\n").filter((l) => l.startsWith("#")).length >= 5, "the banner is not a multi-line box");
    },
  },
  {
    name: "prints the parameter counts like the book",
    test: (nb) =>
      shows("params", `Total number of parameters: ${offline(nb, "choose") ? "13,393,664" : "406,286,336"}`, "considering weight tying", "Total size of the model:")(nb),
  },
  { name: "the table of GPT-2 sizes", test: (nb) => assert.match(nb.html("sizes"), /<table[\s\S]*gpt2-medium \(355M\)[\s\S]*406,286,336/) },
  {
    name: "gpt2-small without the qkv bias is the book's chapter-4 count, 163,009,536",
    test: shows("sizes", "qkv_bias false (chapter 4's GPT_CONFIG_124M): 163,009,536 parameters; the qkv bias adds 27,648"),
  },
  {
    name: "the loss before fine-tuning: ln(50257) for the random model, far below for GPT-2",
    test: (nb) => {
      const text = nb.text("initial-loss");
      const train = Number(/Training loss: (\d+\.\d+)/.exec(text)?.[1]);
      const val = Number(/Validation loss: (\d+\.\d+)/.exec(text)?.[1]);
      const random = offline(nb, "choose");
      for (const x of [train, val]) assert.ok(random ? Math.abs(x - Math.log(50257)) < 0.3 : x < 6, `loss ${x} (${random ? "random" : "pretrained"})\n${text}`);
    },
  },
  { name: "val[0] is the book's passive-voice example", test: shows("val0", PASSIVE) },
  {
    name: "the prompt is formatInput(val[0]) alone, without ### Response:",
    test: (nb) =>
      assert.equal(
        nb.text("prompt").trimEnd(),
        "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
          `### Instruction:\n${PASSIVE}`,
      ),
  },
  {
    name: "the un-tuned model answers something (at most 35 new tokens)",
    test: (nb) => {
      const m = /(\d+) new tokens:\n([\s\S]*)/.exec(nb.text("untuned"));
      assert.ok(m && Number(m[1]) >= 1 && Number(m[1]) <= 35, `no "N new tokens:" line: ${nb.text("untuned")}`);
    },
  },
];

CHECKS["05"] = [
  { name: "the settings cell shows the epochs", test: shows("settings", "epochs: 2;") },
  { name: "chooses the model (banner when not GPT-2)", test: (nb) => assert.ok(!offline(nb, "model") || nb.text("model").includes("NOT PRETRAINED")) },
  {
    name: "prints the book's loss lines every 5 steps, and the training loss falls",
    test: (nb) => {
      const lines = [...nb.text("train").matchAll(/Ep (\d+) \(Step (\d{6})\): Train loss (\d+\.\d{3}), Val loss (\d+\.\d{3})/g)];
      assert.ok(lines.length >= 4, `only ${lines.length} loss lines`);
      assert.deepEqual(lines.map((m) => Number(m[2])), lines.map((_, i) => 5 * i), "evaluations not at steps 0, 5, 10, …");
      const first = Number(lines[0][3]), last = Number(lines[lines.length - 1][3]);
      assert.ok(last < first - 1, `training loss did not fall: ${first} -> ${last}`);
      assert.ok(Number(lines[lines.length - 1][4]) < Number(lines[0][4]), "validation loss did not fall");
      shows("train", "Training completed in")(nb);
    },
  },
  { name: "the training progress bar finished in place", test: finishedBar("train", "fine-tuning") },
  { name: "the loss chart is a plotly figure with a static image", test: chartWithImage("loss-plot") },
  { name: "the zoomed loss chart too", test: chartWithImage("loss-zoom") },
  { name: "the per-epoch loss table", test: (nb) => { assert.match(nb.html("summary"), /<table[\s\S]*val loss/); shows("summary", "lowest val loss:")(nb); } },
  { name: "a sample after each epoch", test: (nb) => assert.match(nb.html("samples"), /<table[\s\S]*<td[^>]*>1<\/td>[\s\S]*<td[^>]*>2<\/td>/) },
  { name: "saves the model for notebook 06", test: shows("save", "saved the model in runs/notebook/model/: config.json, model.safetensors") },
  {
    name: "the per-epoch tables carry no 0-based index beside their 1-based epochs",
    test: (nb) => {
      for (const tag of ["summary", "samples"]) assert.doesNotMatch(nb.html(tag), /<tr><th[^>]*>0<\/th>/, `cell "${tag}" numbers its rows from 0`);
    },
  },
  { name: "the overfitting run finished its progress bar", test: finishedBar("overfit-train", "overfitting run") },
  { name: "the overfitting run's chart", test: chartWithImage("overfit-plot") },
  {
    // The experiment has its own settings, the same in the quick and the full setting, so CI checks the very run
    // whose outputs are committed: the validation loss must climb at least 10% above its lowest point while the
    // training loss keeps falling.
    name: "overfitting: the validation loss ends >= 10% above its minimum, reached before the end, while the training loss falls",
    test: (nb) => {
      const text = nb.text("overfit-numbers");
      const num = (re: RegExp) => {
        const m = re.exec(text);
        assert.ok(m, `no ${re} in:\n${text}`);
        return m.slice(1).map(Number);
      };
      const [minVal, minStep] = num(/lowest val loss: (\d+\.\d+) at step (\d+)/);
      const [finalVal, finalStep] = num(/final val loss: (\d+\.\d+) at step (\d+)/);
      const [rise] = num(/rise above the lowest: (\d+\.\d+)%/);
      const [trainAtMin, trainEnd] = num(/train loss: (\d+\.\d+) at the lowest val loss, (\d+\.\d+) at the end/);
      assert.ok(minStep < finalStep, `the lowest validation loss is at the last step (${minStep})`);
      assert.ok(Math.abs(rise - 100 * (finalVal / minVal - 1)) < 0.2, `rise ${rise}% does not follow from ${minVal} -> ${finalVal}`);
      assert.ok(rise >= 10, `the validation loss rose only ${rise}% above its minimum`);
      assert.ok(trainEnd < trainAtMin, `the training loss did not keep falling: ${trainAtMin} -> ${trainEnd}`);
    },
  },
];

CHECKS["06"] = [
  { name: "loads notebook 05's model", test: shows("load", "fine-tuned") },
  {
    name: "answers the test entries with a progress bar",
    test: (nb) => {
      finishedBar("responses", "responses")(nb);
      assert.match(nb.text("responses"), /\d+ responses; \d+ empty/);
      assert.match(nb.text("responses"), /first answer as generateResponse gives it alone: true/);
    },
  },
  { name: "prints the first three like the book", test: (nb) => assert.equal(nb.text("first-three").split("Correct response:").length - 1, 3) },
  {
    name: "the side-by-side table: test entries numbered from 1, at most 20 rows, long words wrap",
    test: (nb) => {
      const html = nb.html("table");
      assert.match(html, /<table[\s\S]*model response[\s\S]*<tr><th[^>]*>1<\/th><td[^>]*>Rewrite the sentence using a simile\./);
      const rows = (html.match(/<tr><th[^>]*>\d+<\/th>/g) ?? []).length;
      assert.ok(rows >= 1 && rows <= 20, `${rows} rows`);
      assert.match(html, /overflow-wrap:anywhere/);
    },
  },
  {
    name: "writes instruction-data-with-response.json in the book's format",
    test: (nb) => {
      shows("save-responses", "saved runs/notebook/instruction-data-with-response.json", "fields of each entry: instruction, input, output, model_response")(nb);
      const n = Number(/(\d+) responses;/.exec(nb.text("responses"))?.[1]);
      assert.ok(nb.text("save-responses").includes(`${n} entries`), `the file should hold the ${n} responses`);
    },
  },
  { name: "the reloaded model gives the same logits", test: shows("reload", "max |saved - reloaded| = 0", "the reloaded model is the same: true", "model.safetensors") },
];

CHECKS["09"] = [
  { name: "the settings cell shows rank 16, alpha 16", test: shows("settings", "LoRA rank 16, alpha 16") },
  { name: "the cell's A bound is the library's kaiming-uniform bound", test: shows("layer", "A's bound at rank 16: cell 0.250000, library 0.250000") },
  { name: "the cell's LinearWithLoRA agrees with the library's", test: shows("layer-check", "the cell's LinearWithLoRA agrees with the library's: true") },
  {
    name: "the book's gpt2-medium counts: 406,286,336 before, 0 after freezing, 7,898,384 LoRA",
    test: shows("counts-medium", "Total trainable parameters before: 406,286,336", "Total trainable parameters after: 0", "Total trainable LoRA parameters: 7,898,384"),
  },
  {
    name: "the chosen model's counts (tiny offline: 2 blocks, every linear layer wrapped)",
    test: (nb) => {
      const m = /Total trainable parameters before: ([\d,]+)[\s\S]*Total trainable LoRA parameters: ([\d,]+)/.exec(nb.text("model"));
      assert.ok(m, "no count lines");
      const [before, lora] = [Number(m![1].replace(/,/g, "")), Number(m![2].replace(/,/g, ""))];
      if (offline(nb, "model")) assert.deepEqual([before, lora], [13_393_664, 879_888]);
      assert.ok(lora < before / 5, `LoRA trains ${lora} of ${before}`);
    },
  },
  {
    name: "both runs print the book's loss lines, and LoRA's training loss falls",
    test: (nb) => {
      const text = nb.text("train");
      for (const label of ["LoRA", "full"]) {
        const lines = [...text.matchAll(new RegExp(`${label}: Ep \\d+ \\(Step (\\d{6})\\): Train loss (\\d+\\.\\d{3}), Val loss (\\d+\\.\\d{3})`, "g"))];
        assert.ok(lines.length >= 4, `${label}: only ${lines.length} loss lines`);
        assert.ok(Number(lines[lines.length - 1][2]) < Number(lines[0][2]) - 0.5, `${label}: training loss did not fall`);
      }
      shows("train", "LoRA: training completed in", "full: training completed in")(nb);
    },
  },
  { name: "the loss chart puts both runs side by side", test: (nb) => { chartWithImage("loss-plot")(nb); assert.match(nb.html("loss-plot"), /<table[\s\S]*LoRA rank 16/); } },
  {
    // The claim is the notebook's own line, "LoRA saves X MiB in a step": far smaller AdamW moments, and less
    // memory for a step in all (moments + the peak above resting). The peak alone is not compared: on the tiny
    // model LoRA's extra activations (x A on every layer, the head's low-rank term) are of the same order as the
    // gradients it saves (wasm: 242.3 vs 266.1 MiB; native, where TF.js counts its tape's clones as new tensors: 312.7 vs 266.9).
    name: "LoRA's measured AdamW state is far smaller, and a step needs less memory in all",
    test: (nb) => {
      const m = /AdamW moments: ([\d.]+) MiB full, ([\d.]+) MiB LoRA[\s\S]*peak above resting: ([\d.]+) MiB full, ([\d.]+) MiB LoRA[\s\S]*LoRA saves (-?[\d.]+) MiB in a step/.exec(nb.text("memory"));
      assert.ok(m, "no memory lines");
      const [mf, ml, pf, pl, saved] = m!.slice(1).map(Number);
      assert.ok(ml * 5 < mf, `moments: LoRA ${ml} vs full ${mf} MiB`);
      assert.ok(ml + pl < mf + pf, `moments + step peak: LoRA ${ml} + ${pl} vs full ${mf} + ${pf} MiB`);
      assert.ok(Math.abs(saved - (mf - ml + pf - pl)) < 0.25, `"LoRA saves ${saved} MiB" is not (${mf} - ${ml}) + (${pf} - ${pl})`);
    },
  },
  {
    name: "saves the merged model and the adapter; the merged model computes the LoRA model's loss",
    test: (nb) => {
      shows("save", "the merged model computes what the LoRA model does: true")(nb);
      const m = /merged model: ([\d.]+) MiB; adapter alone: ([\d.]+) MiB/.exec(nb.text("save"));
      assert.ok(m && Number(m[2]) * 5 < Number(m[1]), `adapter not small next to the model: ${m?.[0]}`);
    },
  },
];

CHECKS["07"] = [
  { name: "reads notebook 06's responses", test: (nb) => assert.match(nb.text("load"), /^\d+ responses of /m) },
  {
    name: "the judge's prompt for the first entry asks for the integer only",
    test: (nb) => {
      const text = nb.text("prompt");
      assert.ok(text.startsWith("You are grading the response of a language model"), text.slice(0, 200));
      shows("prompt", "Reference answer:", "Model response:", "Reply with the integer only, nothing else.")(nb);
    },
  },
  { name: "reads answers as the book's int(score)", test: shows("parse", '"85" -> 85', '" 37\\n" -> 37', '"Score: 85" -> unscored', '"120" -> unscored (120 is outside 0-100)') },
  {
    name: "runs the judge, or says there is none and how to start one",
    test: (nb) => {
      const text = nb.text("judge");
      if (/Number of scores: \d+ of \d+\nAverage score: \d+\.\d\d/.test(text)) return;
      assert.match(text, /no judge here: cannot reach Ollama at .*`ollama serve`/, text);
      shows("judge", "the next cells score the responses with ROUGE-L instead")(nb);
    },
  },
  {
    name: "ROUGE-L of every response, labelled as a metric, with a table",
    test: (nb) => {
      const n = Number(/^(\d+) responses/m.exec(nb.text("load"))?.[1]);
      shows("metric", "NOT the judge's score", `Number of scores: ${n} of ${n}`)(nb);
      assert.match(nb.text("metric"), /Average ROUGE-L F1: \d+\.\d\d/);
      assert.match(nb.html("metric"), /<table[\s\S]*ROUGE-L F1/);
    },
  },
  { name: "what the metric misses: the book's three answers", test: shows("metric-misses", "ROUGE-L F1 0.800", "ROUGE-L F1 0.857", "ROUGE-L F1 0.364") },
];

CHECKS["08"] = [
  {
    name: "7.1: entries 50 and 999 in the Phi-3 format, as the book's solution",
    test: shows("phi3-format", "<|user|>\nIdentify the correct spelling of the following word.\nOcassion\n<|assistant|>:\nThe correct spelling is 'Occasion.'", "<|user|>\nWhat is an antonym of 'complicated'?\n<|assistant|>:\nAn antonym of 'complicated' is 'simple'."),
  },
  { name: "7.1: Phi-3 texts are shorter", test: (nb) => assert.match(nb.text("phi3-lengths"), /Phi-3 texts are [1-9]\d% shorter/) },
  { name: "7.1: the response extraction drops the Phi-3 header", test: shows("phi3-extract", `"The correct spelling is 'Occasion'."`) },
  {
    name: "7.2: the masked batch is the book's tensor",
    test: shows(
      "mask-batch",
      "inputs [3,64], targets [3,64]",
      "targets[1]: [" + [...new Array(46).fill(-100), 198, 198, 21017, 18261, 25, 198, 34, 12204, 375, 576, 11, 42651, 11, 1168, 37052, 50256, -100, -100].join(",") + "]",
    ),
  },
  { name: "7.2: only the response is scored", test: shows("mask-decoded", "--- the scored targets:\n\n\n### Response:\nCrocodile, Elephant, Zebra<|endoftext|>") },
  { name: "7.3: the book's split of the 52k entries", test: shows("alpaca-split", "52,002 entries -> train 44201, validation 2601, test 5200") },
  {
    name: "7.3: the download, with progress and the checksum of data/NOTICE",
    test: (nb) => {
      finishedBar("download", "download")(nb);
      shows("download", "checksum as in data/NOTICE: true; entries: 1100")(nb);
    },
  },
];
