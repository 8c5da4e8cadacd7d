// The README's figures and numbers, taken from the committed outputs of notebook 05, so that the README shows
// the runs the notebooks show and nothing else:
//
//   - notebooks/images/05-finetune.png     the book's run's loss chart (cell "loss-plot")
//   - notebooks/images/05-overfitting.png  the overfitting run's chart (cell "overfit-plot")
//   - the block between <!-- readme-figures:start --> and <!-- readme-figures:end --> in README.md: the
//     settings of both runs, their losses and the training times, as the notebook printed them.
//
// The PNGs are the static images the notebook's charts carry (made by lib/display's figure renderer when the
// notebook was executed), written out unchanged.
//
//   npx tsx scripts/readme-figures.ts           # write the images and the README block
//   npx tsx scripts/readme-figures.ts --check   # exit 1 if either differs from the committed notebook
import * as fs from "node:fs";
import * as path from "node:path";
import { ExecutedNotebook } from "../test/notebooks/notebook";

const ROOT = path.resolve(__dirname, "..");
const NOTEBOOK = path.join(ROOT, "notebooks", "05-finetune.ipynb");
const README = path.join(ROOT, "README.md");
const START = "<!-- readme-figures:start -->";
const END = "<!-- readme-figures:end -->";

export const IMAGES: Record<string, string> = {
  "loss-plot": "notebooks/images/05-finetune.png",
  "overfit-plot": "notebooks/images/05-overfitting.png",
};

function must<T>(x: T | null | undefined, what: string): T {
  if (x === null || x === undefined) throw new Error(`notebooks/05-finetune.ipynb: ${what} not found in the committed outputs (execute the notebook first)`);
  return x;
}

function match(text: string, re: RegExp, what: string): RegExpExecArray {
  return must(re.exec(text), what);
}

/** The static PNG of a chart cell, as bytes. */
export function chartPng(nb: ExecutedNotebook, tag: string): Buffer {
  const png = nb.mime(tag, "image/png");
  if (png.length !== 1) must(null, `the PNG of cell "${tag}"`);
  return Buffer.from(png[0].replace(/\s/g, ""), "base64");
}

/** The README block: both runs' settings and numbers, as the committed notebook printed them. */
export function readmeBlock(nb: ExecutedNotebook): string {
  const settings = nb.text("settings");
  if (/quick setting/.test(settings)) throw new Error("notebooks/05-finetune.ipynb holds quick-setting outputs: the README describes the full run");
  const model = match(nb.text("model"), /model: (.+?), (NOT pretrained|pretrained)/, "the model line");
  const data = match(nb.text("data"), /train (\d+) entries, validation (\d+)/, "the data line");
  const opt = match(nb.text("optimizer"), /AdamW lr ([\d.e-]+), weight decay ([\d.]+); (\d+) steps per epoch, (\d+) in all/, "the optimizer line");
  const epochs = match(settings, /epochs: (\d+)/, "the epochs")[1];
  const train = nb.text("train");
  const lines = [...train.matchAll(/Ep (\d+) \(Step (\d{6})\): Train loss (\d+\.\d{3}), Val loss (\d+\.\d{3})/g)];
  if (lines.length === 0) must(null, "the loss lines");
  const perEpoch = Number(opt[3]);
  // steps 0 and 50, then the last evaluation of each epoch (evaluations fall on multiples of 5)
  const marks = [
    { step: 0, label: "0" },
    { step: 50, label: "50" },
    ...Array.from({ length: Number(epochs) }, (_, e) => {
      const step = Math.floor(((e + 1) * perEpoch - 1) / 5) * 5;
      return { step, label: `${step} (end of epoch ${e + 1})` };
    }),
  ];
  const rows = marks.flatMap(({ step, label }) => {
    const l = lines.find((m) => Number(m[2]) === step);
    return l ? [`| ${label} | ${l[3]} | ${l[4]} |`] : [];
  });
  const time = match(train, /Training completed in ([\d.]+) minutes/, "the training time")[1];
  const lowest = match(nb.text("summary"), /lowest val loss: ([\d.]+) at step (\d+)/, "the lowest val loss");

  const of = nb.text("overfit-settings");
  const ofSet = match(of, /(\d+) training entries, (\d+) epochs, (\d+) steps per epoch, (\d+) in all; lr ([\d.e-]+)/, "the overfitting run's settings");
  const ofNums = nb.text("overfit-numbers");
  const ofMin = match(ofNums, /lowest val loss: ([\d.]+) at step (\d+) \(epoch ([\d.]+)\)/, "the overfitting run's lowest val loss");
  const ofEnd = match(ofNums, /final val loss: ([\d.]+) at step (\d+) \(epoch ([\d.]+)\)/, "the overfitting run's final val loss");
  const ofRise = match(ofNums, /rise above the lowest: ([\d.]+)%/, "the overfitting run's rise")[1];
  const ofTrain = match(ofNums, /train loss: ([\d.]+) at the lowest val loss, ([\d.]+) at the end/, "the overfitting run's train loss");
  const ofTime = match(nb.text("overfit-train"), /Training completed in ([\d.]+) minutes/, "the overfitting run's time")[1];

  return [
    START,
    `<!-- written by scripts/readme-figures.ts from the committed outputs of notebooks/05-finetune.ipynb; do not edit by hand -->`,
    `**The book's schedule, as committed in notebook 05**: the \`${model[1]}\` model (${model[2] === "pretrained" ? "pretrained" : "random weights"}), ` +
      `${epochs} epochs on all ${data[1]} training entries (${opt[3]} steps per epoch, ${opt[4]} in all), AdamW lr ${opt[1]}, weight decay ${opt[2]}, ` +
      `batch 8, and an evaluation every 5 steps (the mean loss of 5 training and 5 validation batches; ${data[2]} validation entries). Training took ${time} minutes ` +
      `on the machine that executed it (two CPU cores shared with other jobs at the time; a quiet machine is faster).`,
    "",
    "| step | train loss | val loss |",
    "|---:|---:|---:|",
    ...rows,
    "",
    `The lowest validation loss of that run was ${lowest[1]}, at step ${lowest[2]}.`,
    "",
    `**The overfitting run, the notebook's last section**: a fresh model with the same settings, on the first ${ofSet[1]} training entries ` +
      `for ${ofSet[2]} epochs (${ofSet[3]} steps per epoch, ${ofSet[4]} in all; ${ofTime} minutes on the same shared machine). ` +
      `The validation loss was lowest at step ${ofMin[2]} (epoch ${ofMin[3]}), ${ofMin[1]}, and ended at ${ofEnd[1]} (step ${ofEnd[2]}), ` +
      `${ofRise}% above its lowest, while the training loss went on falling from ${ofTrain[1]} to ${ofTrain[2]}.`,
    END,
  ].join("\n");
}

function main(): number {
  const check = process.argv.includes("--check");
  const nb = ExecutedNotebook.read(NOTEBOOK);
  const readme = fs.readFileSync(README, "utf8");
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) throw new Error(`README.md has no ${START} … ${END} block`);
  const updated = readme.slice(0, from) + readmeBlock(nb) + readme.slice(to + END.length);
  const stale: string[] = [];
  if (updated !== readme) stale.push("README.md");
  for (const [tag, file] of Object.entries(IMAGES)) {
    const png = chartPng(nb, tag);
    const target = path.join(ROOT, file);
    if (fs.existsSync(target) && fs.readFileSync(target).equals(png)) continue;
    stale.push(file);
    if (!check) fs.writeFileSync(target, png);
  }
  if (check) {
    console.log(stale.length ? `out of date with notebooks/05-finetune.ipynb: ${stale.join(", ")} (run npx tsx scripts/readme-figures.ts)` : "README figures match notebook 05");
    return stale.length ? 1 : 0;
  }
  if (updated !== readme) fs.writeFileSync(README, updated);
  console.log(stale.length ? `wrote ${stale.join(", ")}` : "nothing to change");
  return 0;
}

if (require.main === module) process.exitCode = main();
