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
