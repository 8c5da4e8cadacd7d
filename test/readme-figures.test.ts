// The README's charts and numbers are those of the committed notebook 05 (scripts/readme-figures.ts copies them).
import { test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { chartPng, IMAGES, readmeBlock } from "../scripts/readme-figures";
import { ExecutedNotebook } from "./notebooks/notebook";

const ROOT = path.resolve(__dirname, "..");
const nb = () => ExecutedNotebook.read(path.join(ROOT, "notebooks", "05-finetune.ipynb"));

test("README's figures block is what notebook 05's committed outputs say", () => {
  const readme = fs.readFileSync(path.join(ROOT, "README.md"), "utf8");
  assert.ok(readme.includes(readmeBlock(nb())), "README.md is out of date with notebooks/05-finetune.ipynb: run npx tsx scripts/readme-figures.ts");
});

test("README's images are the committed charts of notebook 05", () => {
  const book = nb();
  for (const [tag, file] of Object.entries(IMAGES)) {
    assert.ok(fs.readFileSync(path.join(ROOT, file)).equals(chartPng(book, tag)), `${file} is not the PNG of cell "${tag}": run npx tsx scripts/readme-figures.ts`);
  }
});

test("readmeBlock follows the outputs and refuses quick-setting ones", () => {
  const book = nb();
  const train = book.cell("train");
  const edited = JSON.parse(JSON.stringify(book.json));
  const cell = edited.cells[book.cells.indexOf(train)];
  for (const o of cell.outputs) if (o.output_type === "stream") o.text = [].concat(o.text).join("").replace(/Val loss (\d)\.(\d{3})/g, "Val loss 9.$2");
  assert.notEqual(readmeBlock(new ExecutedNotebook("x", edited)), readmeBlock(book));
  const settings = edited.cells[book.cells.indexOf(book.cell("settings"))];
  settings.outputs = [{ output_type: "stream", name: "stdout", text: "epochs: 2; training entries: 120 (quick setting, COURSE_QUICK=1)\n" }];
  assert.throws(() => readmeBlock(new ExecutedNotebook("x", edited)), /quick-setting outputs/);
});
