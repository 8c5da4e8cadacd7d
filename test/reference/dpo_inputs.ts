// Step 1 of the DPO golden fixture (step 2 is dpo_reference.py): a few entries of the book's preference
// data, tokenized with the library (the reference Python has no tiktoken), and the model to run them on.
// Writes test/fixtures/dpo-golden.json without the expected values.
//   npx tsx test/reference/dpo_inputs.ts && $COURSE_HF_PYTHON test/reference/dpo_reference.py
import * as fs from "fs";
import * as path from "path";
import { loadPreferenceData } from "../../lib/data/preference-data";
import { PreferenceDataset } from "../../lib/data/preference-dataset";

(async () => {
  const all = await loadPreferenceData();
  // spread over the file: with and without an input, a chosen longer and a rejected longer than the output
  const picks = [0, 1, 2, 45, 56, 61];
  const entries = picks.map((i) => all[i]);
  const encoded = new PreferenceDataset(entries).encoded;
  const config = { vocabSize: 50257, contextLength: 128, embDim: 16, nHeads: 2, nLayers: 2, dropRate: 0.0, qkvBias: true };
  const out = {
    about: "DPO golden: test/reference/dpo_inputs.ts, then dpo_reference.py (the book's ch07/04 DPO code, re-written) adds the expected values",
    config,
    tiedHead: false,
    // the policy has the deterministic weights (test/helpers/deterministic-weights.ts), the reference the same formula with this salt
    referenceSalt: "reference:",
    beta: 0.1,
    batchSize: 3,
    picks,
    entries,
    encoded,
  };
  fs.writeFileSync(path.join(__dirname, "..", "fixtures", "dpo-golden.json"), JSON.stringify(out) + "\n");
  console.log("lengths", encoded.map((e) => [e.prompt.length, e.chosen.length, e.rejected.length]));
})();
