// The key outputs each notebook must show, by notebook number. A check finds its cell by tag
// (cell metadata "tags"), so moving cells around does not break it, and throws when the output is wrong.
import * as assert from "node:assert/strict";
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
      assert.match(nb.html("table-lengths"), /<table[\s\S]*<th>count<\/th>(<td[^>]*>1100<\/td>){4}/);
    },
  },
  { name: "splits 935 / 55 / 110", test: shows("split-sizes", "Training set length: 935", "Validation set length: 55", "Test set length: 110") },
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
