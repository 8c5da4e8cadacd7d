// %% [markdown]
// # 02 · Batching: the collate function, -100 masking and the loss
//
// *Chapter 7, section 7.3 of Raschka's "Build a Large Language Model (from Scratch)", in TypeScript.*
//
// Notebook 01 ended with 935 training texts of 40 to 91 tokens each. A model trains on *batches*: a batch is
// one rectangular tensor, (batch size × sequence length), so texts of different lengths must be padded to a
// common length. The function that turns a list of token sequences into that rectangle is the **collate
// function**. Like the book, we write it in three drafts, each run on the same toy batch:
//
// 1. **draft 1** pads the inputs;
// 2. **draft 2** also builds the *targets*, the inputs shifted by one token;
// 3. **the final version** replaces padding in the targets by **-100**, the value the loss skips, and can cut
//    sequences to the model's context length.
//
// Then we check that the library's `collate` (the one training uses) gives exactly the same tensors, and see
// with a small cross-entropy example *why* -100 makes the padding vanish from the loss.

// %%
import * as tf from "@tensorflow/tfjs";
import { initEngine, END_OF_TEXT, encodeText, collate, collateDraft1, collateDraft2, maskedCrossEntropy, IGNORE_INDEX } from "@course/lib";

const engine = await initEngine();

// %% [markdown]
// ## The padding token
//
// GPT-2 has no dedicated padding token, so the book pads with `<|endoftext|>`, the token GPT-2 already knows
// as "a text ends here". Its id:

// %% tags=["eot"]
console.log(encodeText("<|endoftext|>", { allowEndOfText: true }));
console.log("END_OF_TEXT =", END_OF_TEXT);

// %% [markdown]
// ## The toy batch
//
// Three "texts" of 5, 2 and 3 token ids. Real batches hold 8 texts of 40–91 tokens, but every step of the
// collate function is visible on this small one.

// %%
const inputs1 = [0, 1, 2, 3, 4];
const inputs2 = [5, 6];
const inputs3 = [7, 8, 9];
const batch = [inputs1, inputs2, inputs3];

// %% [markdown]
// ## Draft 1: pad the inputs
//
// Every sequence gets one `<|endoftext|>` appended, and is then padded with more of them up to the longest
// sequence **plus one**. Then that last position is cut off again (`padded.slice(0, -1)`, Python's
// `padded[:-1]`).

// %% tags=["draft1"]
function customCollateDraft1(batch: number[][], padTokenId = 50256): tf.Tensor2D {
  // every row becomes one longer than the longest sequence: room for its closing <|endoftext|>
  const batchMaxLength = Math.max(...batch.map((item) => item.length + 1));
  const inputsLst: number[][] = [];
  for (const item of batch) {
    // close the text with one <|endoftext|>, then fill the row up with more of the same token
    const newItem = [...item, padTokenId];
    const padded = [...newItem, ...new Array<number>(batchMaxLength - newItem.length).fill(padTokenId)];
    const inputs = padded.slice(0, -1); // the model reads all but the last position: padded[:-1]
    inputsLst.push(inputs);
  }
  return tf.tensor2d(inputsLst, undefined, "int32"); // (B, batchMaxLength - 1)
}

customCollateDraft1(batch).print();

// %% [markdown]
// ### "Why add a pad token only to remove it?"
//
// This is the step readers of the book trip over, and in draft 1 alone it does look pointless: the longest
// sequence gets its `<|endoftext|>` appended and then immediately cut again, so the batch is exactly as wide
// as the longest sequence (5), as if nothing had been added. Here is the padded batch *before* the cut:

// %% tags=["padded"]
const batchMaxLength = Math.max(...batch.map((item) => item.length + 1)); // 6
const padded = batch.map((item) => [...item, 50256, ...new Array<number>(batchMaxLength - item.length - 1).fill(50256)]);
console.log(padded);

// %% [markdown]
// The extra column is not for the inputs; it is for the **targets**, which draft 2 adds. A language model is
// trained to predict the *next* token at every position, so the targets are the same row shifted left by one:
// inputs = `padded[:-1]` (all but the last) and targets = `padded[1:]` (all but the first). Both are 5 wide.
// Without the extra column, the longest sequence `0 1 2 3 4` would have no next token after `4`; with it, its
// last target is `<|endoftext|>`: the model learns that the text ends there. Draft 1 simply shows the first
// half of that split before the second half exists.

// %% [markdown]
// ## Draft 2: inputs and targets
//
// The lines marked `// New:` are the only changes from draft 1.

// %% tags=["draft2"]
function customCollateDraft2(
  batch: number[][],
  padTokenId = 50256,
): { inputs: tf.Tensor2D; targets: tf.Tensor2D } { // New: returns targets too
  const batchMaxLength = Math.max(...batch.map((item) => item.length + 1));
  const inputsLst: number[][] = [];
  const targetsLst: number[][] = []; // New: a list for the targets
  for (const item of batch) {
    const newItem = [...item, padTokenId];
    const padded = [...newItem, ...new Array<number>(batchMaxLength - newItem.length).fill(padTokenId)];
    const inputs = padded.slice(0, -1); // padded[:-1]
    const targets = padded.slice(1); // New: what comes next at each position: padded[1:]
    inputsLst.push(inputs);
    targetsLst.push(targets); // New
  }
  return {
    inputs: tf.tensor2d(inputsLst, undefined, "int32"), // (B, T)
    targets: tf.tensor2d(targetsLst, undefined, "int32"), // New: (B, T), the next token at every position
  };
}

const draft2 = customCollateDraft2(batch);
draft2.inputs.print();
draft2.targets.print();

// %% [markdown]
// Read the second row: input `5` should be followed by `6`, and `6` by `<|endoftext|>` (50256). Those two
// targets are real lessons. The three 50256s after them are not: they only say "after the end comes more end".
// Trained on them, the model would spend effort learning to repeat padding, and in a real batch of 8 texts
// padding can be a fifth of all target positions.

// %% [markdown]
// ## The final version: mask the padding with -100
//
// The fix is to write a special value, **-100**, over the padding *in the targets*, and to have the loss skip
// every target equal to it. Two details:
//
// * **The first `<|endoftext|>` stays a target.** It is the one that teaches the model to *stop* after its
//   answer. Only the padding after it is masked. (Because the pad token and the end-of-text token are the same
//   id, the mask is "every 50256 after the first", exactly as in the book.)
// * **The inputs keep their padding.** The model must read *something* at those positions; since attention is
//   causal, real tokens never look at the padding to their right, and the loss ignores what is predicted there.
//
// The function also takes `allowedMaxLength`: GPT-2 has position embeddings for 1,024 positions only, so a
// longer text would have to be cut to fit. The course's texts are at most 91 tokens, so it never cuts here, but
// a dataset with long texts would fail inside the model without it.

// %% tags=["final-draft"]
function customCollateFn(
  batch: number[][],
  padTokenId = 50256,
  ignoreIndex = -100,
  allowedMaxLength: number | null = null,
): { inputs: tf.Tensor2D; targets: tf.Tensor2D } {
  const batchMaxLength = Math.max(...batch.map((item) => item.length + 1));
  const inputsLst: number[][] = [];
  const targetsLst: number[][] = [];
  for (const item of batch) {
    const newItem = [...item, padTokenId];
    const padded = [...newItem, ...new Array<number>(batchMaxLength - newItem.length).fill(padTokenId)];
    let inputs = padded.slice(0, -1);
    let targets = padded.slice(1);

    // New: the first 50256 in the targets marks the end of the text and stays; later ones become ignoreIndex
    const padPositions = targets.flatMap((token, i) => (token === padTokenId ? [i] : []));
    for (const i of padPositions.slice(1)) targets[i] = ignoreIndex;

    // New: if the caller gives a limit (the model's context), cut both rows to it
    if (allowedMaxLength !== null) {
      inputs = inputs.slice(0, allowedMaxLength);
      targets = targets.slice(0, allowedMaxLength);
    }
    inputsLst.push(inputs);
    targetsLst.push(targets);
  }
  return {
    inputs: tf.tensor2d(inputsLst, undefined, "int32"), // (B, T)
    targets: tf.tensor2d(targetsLst, undefined, "int32"), // (B, T), padding after the first end-of-text = -100
  };
}

const final = customCollateFn(batch);
final.inputs.print();
final.targets.print();

// %% [markdown]
// ## The library's `collate` is the same function
//
// Training does not use the cells above; it uses `collate` from the library (`lib/data/collate.ts`), and the
// library keeps the two drafts as `collateDraft1` and `collateDraft2`. They must agree with what we just wrote,
// token for token:

// %% tags=["library"]
const fromLibrary = collate(batch); // defaults: padTokenId 50256, ignoreIndex -100, no length limit
fromLibrary.inputs.print();
fromLibrary.targets.print();

const same = (a: tf.Tensor, b: tf.Tensor) => JSON.stringify(a.arraySync()) === JSON.stringify(b.arraySync());
console.log("draft 1 agrees with collateDraft1:", same(customCollateDraft1(batch), collateDraft1(batch)));
const libDraft2 = collateDraft2(batch);
console.log("draft 2 agrees with collateDraft2:", same(draft2.inputs, libDraft2.inputs) && same(draft2.targets, libDraft2.targets));
console.log("final version agrees with collate:", same(final.inputs, fromLibrary.inputs) && same(final.targets, fromLibrary.targets));

// %% [markdown]
// And with a length limit of 3, every row is cut after its third position, inputs and targets alike:

// %% tags=["max-length"]
const cut = collate(batch, { allowedMaxLength: 3 });
cut.inputs.print();
cut.targets.print();
console.log("agrees with the cell version:", same(cut.targets, customCollateFn(batch, 50256, -100, 3).targets));

// %% [markdown]
// ## Why -100? The loss skips it
//
// The loss of a language model is the **cross-entropy** of the next token: for every position, take the
// model's scores (logits) over the vocabulary, turn them into probabilities with a softmax, and score
// `-log(probability of the correct next token)`. The batch's loss is the mean over positions.
//
// The book demonstrates the masking with two-token vocabularies. First, two positions, whose correct tokens
// are 0 and 1. Written out in a cell, the computation is three lines:

// %% tags=["ce-1"]
const logits1 = tf.tensor2d([[-1.0, 1.0], [-0.5, 1.5]]); // (N=2 positions, V=2 tokens)
const targets1 = [0, 1];

/** -log softmax at the target, averaged over the positions whose target is not ignoreIndex. */
async function crossEntropy(logits: tf.Tensor2D, targets: number[], ignoreIndex = -100): Promise<number> {
  const logProbs = (await tf.logSoftmax(logits).array()) as number[][]; // (N, V), read with await: that works on every engine, GPUs too
  const kept = targets.flatMap((t, i) => (t === ignoreIndex ? [] : [-logProbs[i][t]]));
  return kept.reduce((a, b) => a + b, 0) / kept.length;
}
console.log("loss_1 (cell):", (await crossEntropy(logits1, targets1)).toFixed(4));

// The library's loss takes a batch: logits (B, T, V) and targets (B, T), here one sequence of 2 positions
const loss1 = maskedCrossEntropy(logits1.expandDims(0), tf.tensor2d([targets1], undefined, "int32"));
console.log("loss_1 (library):", (await loss1.data())[0].toFixed(4));

// %% [markdown]
// A third position (target 1) changes the mean, as it should: it is one more position to score.

// %% tags=["ce-2"]
const logits2 = tf.tensor2d([[-1.0, 1.0], [-0.5, 1.5], [-0.5, 1.5]]); // (N=3, V=2)
const targets2 = [0, 1, 1];
const loss2 = maskedCrossEntropy(logits2.expandDims(0), tf.tensor2d([targets2], undefined, "int32"));
console.log("loss_2:", (await loss2.data())[0].toFixed(4));

// %% [markdown]
// Now the same three positions, but the third target is -100. The loss is exactly `loss_1` again: the
// masked position is neither scored nor counted in the mean. That is what the collate function relies on,
// padding positions contribute nothing, whatever the model predicts there.

// %% tags=["ce-3"]
const targets3 = [0, 1, -100];
const loss3 = maskedCrossEntropy(logits2.expandDims(0), tf.tensor2d([targets3], undefined, "int32"));
console.log("loss_3:", (await loss3.data())[0].toFixed(4));
console.log("loss_3 (cell):", (await crossEntropy(logits2, targets3)).toFixed(4));
console.log("loss_1 == loss_3:", (await loss1.data())[0] === (await loss3.data())[0]);

// %% [markdown]
// Why -100 and not 0 or -1? Any value that is not a token id works; -100 is the default `ignore_index` of
// PyTorch's `cross_entropy`, which the book uses, so the library keeps it: `IGNORE_INDEX` is

// %%
console.log(IGNORE_INDEX);

// %% [markdown]
// The same trick can hide more than padding. Masking the *prompt* tokens too (instruction and input) makes
// the model learn only from the responses. The book leaves this as exercise 7.2, and its solution reports the
// outcome for gpt2-medium: with the instruction and input masked, the fine-tuned model scored 47.73 on average
// in section 7.8's evaluation (Llama 3 grading the 110 test responses from 0 to 100), against 50.32 for the
// chapter's run without that mask — slightly worse, in line with the paper "Instruction Tuning With Loss Over
// Instructions" (Shi et al., 2024, arXiv:2405.14394), which found that keeping the instructions in the loss
// can help. This course, like the book's chapter, masks only the padding.

// %% [markdown]
// ## What comes next
//
// We can now turn any list of texts into an (inputs, targets) pair with the padding masked. Notebook **03**
// puts this to work on the real data: the `InstructionDataset` tokenizes the 935 training texts, a `DataLoader`
// shuffles them into batches of 8 and calls `collate`, and we measure how much padding those batches carry, and
// how much of it goes away when texts of similar length are batched together.
