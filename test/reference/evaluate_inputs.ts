// Step 1 of the `evaluate` golden fixture (step 2 is evaluate_reference.py):
// pick a few short entries of the book's data and tokenize them with the library, since
// Debian's python has no tiktoken. Writes test/fixtures/evaluate-golden.json without `loss`.
//   npx tsx test/reference/evaluate_inputs.ts && /usr/bin/python3 test/reference/evaluate_reference.py
import * as fs from "fs";
import * as path from "path";
import { loadInstructionData } from "../../lib/data/instruction-data";
import { InstructionDataset } from "../../lib/data/dataset";

(async () => {
  const all = await loadInstructionData();
  const entries = all.filter((_, i) => i % 37 === 0).slice(0, 8); // spread over the file, varied lengths
  const encoded = new InstructionDataset(entries).encoded;
  const config = { vocabSize: 50257, contextLength: 256, embDim: 16, nHeads: 2, nLayers: 2, dropRate: 0.0, qkvBias: true };
  const out = { about: "evaluate CLI golden: test/reference/evaluate_inputs.ts + evaluate_reference.py", config, tiedHead: true, batchSize: 3, entries, encoded };
  fs.writeFileSync(path.join(__dirname, "..", "fixtures", "evaluate-golden.json"), JSON.stringify(out) + "\n");
  console.log("lengths", encoded.map((e) => e.length));
})();
