// %% [markdown]
// # 03 · Data loaders, and how much of a batch is padding
//
// *Chapter 7, section 7.4 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript, plus one
// idea from outside the book: length-grouped batches.*
//
// Notebook 02 built `collate`, which turns a handful of token sequences into an (inputs, targets) pair. Training
// needs that for the whole dataset, epoch after epoch, in random order. This notebook:
//
// 1. tokenizes the three splits with `InstructionDataset`;
// 2. builds the book's three loaders (train: batches of 8, shuffled, the last incomplete batch dropped;
//    validation and test: in order, nothing dropped) and looks at the batch shapes — every batch is
//    8 × *its own* length, because each is padded only to its own longest text;
// 3. prints the first training input and its targets, -100 and all;
// 4. measures how much of what the model computes is padding, and how much of it length-grouped batches save.

// %%
import * as tf from "@tensorflow/tfjs";
import {
  initEngine, loadInstructionData, splitData, InstructionDataset, DataLoader, decodeTokens, comparePadding,
  showPlot, showTable, BOOK_BATCH_SIZE, BOOK_SEED, PLOT_SIZE,
} from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## Datasets
//
// `InstructionDataset` formats every entry as in notebook 01 (`formatTrainingText`: prompt plus response) and
// tokenizes it once, up front, so that making a batch later is only padding. No end-of-text is added here:
// `collate` appends it.

// %% tags=["datasets"]
const { train, val, test } = splitData(await loadInstructionData());
const trainDataset = new InstructionDataset(train);
const valDataset = new InstructionDataset(val);
const testDataset = new InstructionDataset(test);
console.log("tokenized texts:", trainDataset.length, "train,", valDataset.length, "validation,", testDataset.length, "test");
const firstText = trainDataset.get(0);
console.log("the first training text has", firstText.length, "tokens; its first ten:", firstText.slice(0, 10).join(", "));

// %% [markdown]
// ## Loaders
//
// The book's settings: batches of 8; the training loader shuffles (with seed 123) and drops the last, incomplete
// batch, so every training step sees exactly 8 texts; validation and test keep their order and every entry.
//
// The library names the book's settings once, in `lib/core/book.ts`: `BOOK_BATCH_SIZE` (8) and `BOOK_SEED`
// (123) are imported from there.
//
// One difference from PyTorch: the order of epoch *e* is a function of (seed, *e*) alone. A training run that
// is stopped and resumed in the middle of an epoch therefore sees exactly the batches an uninterrupted run
// would have seen. (The order is not the book's: it comes from a different random number generator.)

// %% tags=["loaders"]
const batchSize = BOOK_BATCH_SIZE;
const trainLoader = new DataLoader(trainDataset, { batchSize, shuffle: true, dropLast: true, seed: BOOK_SEED });
const valLoader = new DataLoader(valDataset, { batchSize, shuffle: false, dropLast: false });
const testLoader = new DataLoader(testDataset, { batchSize, shuffle: false, dropLast: false });
console.log(
  "batches per epoch:",
  trainLoader.numBatches, "train,", valLoader.numBatches, "validation,", testLoader.numBatches, "test",
);

// %% [markdown]
// 935 / 8 = 116.9: the training loader makes 116 batches and leaves 7 texts out of this epoch (the next epoch
// shuffles differently, so other texts sit out). Validation (55 texts) ends in a batch of 7, test (110) in one
// of 6.
//
// ## Batch shapes
//
// The shape of each training batch, inputs and targets (tensors are created one batch at a time, and disposed
// as soon as we have looked at them):

// %% tags=["shapes"]
const shapes: string[] = [];
for (const { inputs, targets } of trainLoader.batches(0)) {
  if (inputs.shape.join() !== targets.shape.join()) throw new Error("inputs and targets differ in shape");
  shapes.push(`${inputs.shape[0]}×${inputs.shape[1]}`);
  tf.dispose([inputs, targets]);
}
console.log("Train loader, inputs (= targets) shape of each batch:");
for (let i = 0; i < shapes.length; i += 12) console.log(shapes.slice(i, i + 12).join("  "));

// %% [markdown]
// Every batch has 8 rows, and its width is the length of its longest text: no batch is padded further than it
// has to be. This is the point of collating per batch instead of padding the whole dataset to its longest text
// (91 tokens) once.
//
// ## One input and its targets
//
// The first text of the first batch, as token ids: the inputs end in padding (50256), and the targets are the
// inputs shifted by one, with one `<|endoftext|>` kept and the rest of the padding replaced by -100.

// %% tags=["first-batch"]
const first = trainLoader.batches(0).next().value!;
const firstInputs = (first.inputs.arraySync() as number[][])[0]; // (T,): row 0 of (B, T)
const firstTargets = (first.targets.arraySync() as number[][])[0];
/** A row of ids, 12 to a line, right-aligned, so inputs and targets line up position by position. */
function rows(ids: number[]): string {
  const lines: string[] = [];
  for (let i = 0; i < ids.length; i += 12) lines.push(ids.slice(i, i + 12).map((v) => String(v).padStart(6)).join(""));
  return lines.join("\n");
}
console.log(`inputs[0]  (${firstInputs.length} positions)\n${rows(firstInputs)}\n`);
console.log(`targets[0] (${firstTargets.length} positions)\n${rows(firstTargets)}`);

// %% [markdown]
// Decoded, the real part of that input is an ordinary Alpaca prompt with its response:

// %%
const padStart = firstInputs.indexOf(50256); // the first pad: the text ends before it
const realTokens = padStart === -1 ? firstInputs : firstInputs.slice(0, padStart);
console.log(decodeTokens(realTokens));
tf.dispose([first.inputs, first.targets]);

// %% [markdown]
// ## How much of a batch is padding?
//
// The model's transformer blocks compute every position of a batch, padding included; the -100 mask only makes
// the loss ignore the results. (The faster loss that notebook 05 trains with skips the padded positions in the
// output head, the last and widest matmul, but every block before it still computes them.) With texts of 40
// to 91 tokens shuffled into random batches, a short text often sits next to a long one and is mostly padding.
// The fix follows a remark in the blog post this course follows, Giles Thomas's
// [*Writing an LLM from scratch, part 25 — instruction fine-tuning*](https://www.gilesthomas.com/2025/10/llm-from-scratch-25-instruction-fine-tuning) — that a
// service running a model would group requests of similar length to waste less on padding — and Hugging
// Face's `group_by_length`, which does it for training: **length-grouped batches**. Shuffle as before, cut the shuffled texts into
// *mega-batches* of 50 batches (400 texts), sort each mega-batch by length, cut it into batches of 8, and
// shuffle the order of the batches. Batches stay random from epoch to epoch, but each holds texts of similar
// length. It is opt-in: `new DataLoader(dataset, { ..., groupByLength: true })`.
//
// `comparePadding` counts, for one epoch of the training loader with the book's settings, every position the
// model computes and how many of them are padding, for plain and for grouped batches. No tensor is needed:
// token counts are enough.

// %% tags=["padding"]
const { plain, grouped } = comparePadding(trainDataset, { batchSize: BOOK_BATCH_SIZE, seed: BOOK_SEED });
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
showTable(
  [
    { batches: "plain shuffled", positions: plain.totalTokens, padding: plain.paddingTokens, "padding fraction": pct(plain.paddingFraction) },
    { batches: "length-grouped", positions: grouped.totalTokens, padding: grouped.paddingTokens, "padding fraction": pct(grouped.paddingFraction) },
  ],
  { caption: "One epoch of the training loader (116 batches of 8)" },
);
console.log(`plain batches: ${pct(plain.paddingFraction)} padding; length-grouped: ${pct(grouped.paddingFraction)}`);
console.log(`grouped batches compute ${pct(1 - grouped.totalTokens / plain.totalTokens)} fewer positions per epoch`);

// %% [markdown]
// The same numbers batch by batch: the padded width of each of the 116 batches, sorted, for plain and grouped
// batches. The gap between the two lines is computation that length grouping saves. (In JupyterLab or the
// classic notebook the chart is interactive; on GitHub you see its static image.)

// %% tags=["padding-chart"]
const widths = (s: typeof plain) => s.batches.map((b) => b.length).sort((a, b) => a - b);
await showPlot({
  data: [
    { type: "scatter", mode: "lines", name: `plain shuffled (${pct(plain.paddingFraction)} padding)`, y: widths(plain) },
    { type: "scatter", mode: "lines", name: `length-grouped (${pct(grouped.paddingFraction)} padding)`, y: widths(grouped) },
    {
      type: "scatter", mode: "lines", name: "mean text length", line: { dash: "dot", color: "gray" },
      y: widths(plain).map(() => trainDataset.lengths().reduce((a, b) => a + b, 0) / trainDataset.length),
    },
  ],
  layout: {
    title: { text: "Padded width of each training batch (one epoch, sorted)" },
    xaxis: { title: { text: "batches, sorted by width" } },
    yaxis: { title: { text: "tokens per row" } },
    legend: { orientation: "h", y: -0.2 },
    width: PLOT_SIZE.width,
    height: PLOT_SIZE.height + 40, // room for the legend below the chart
  },
});

// %% [markdown]
// Does grouping change what the model learns? Slightly: a batch of similar-length texts is a slightly less
// random sample than a fully shuffled one, and the loss of each batch is its own mean, so short and long texts
// are weighted a little differently. The course keeps the book's plain batches as the default and offers
// grouping as a speed option to compare (`npm run padding-report` prints the same numbers from the command line).
//
// ## What comes next
//
// The data side is complete: the loaders deliver (inputs, targets) batches with the padding masked. Notebook
// **04** loads the pretrained GPT-2 into the library's TensorFlow.js model and checks what it does with an
// instruction *before* fine-tuning — and how high its loss on these batches starts.
