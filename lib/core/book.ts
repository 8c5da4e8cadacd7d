/**
 * The book's settings for chapter 7, named once. The library's defaults, the command lines and
 * the notebooks import them from here, so a reader can see at a glance which numbers are the
 * book's and change one in one place.
 */

/** `torch.manual_seed(123)`: seeds the initial weights, the loader's shuffling, dropout and sampling. */
export const BOOK_SEED = 123;

/** Section 7.4: batches of 8 entries. */
export const BOOK_BATCH_SIZE = 8;

/** Section 7.6: `torch.optim.AdamW(model.parameters(), lr=0.00005, weight_decay=0.1)`. */
export const BOOK_LR = 5e-5;
/** Section 7.6: AdamW's weight decay. */
export const BOOK_WEIGHT_DECAY = 0.1;

/** Section 7.6: `num_epochs = 2`. */
export const BOOK_EPOCHS = 2;
/** Section 7.6: `eval_freq=5`: evaluate every 5 optimizer steps. */
export const BOOK_EVAL_FREQ = 5;
/** Section 7.6: `eval_iter=5`: each evaluation averages the loss over 5 train and 5 validation batches. */
export const BOOK_EVAL_ITER = 5;

/** Chapter 7 fine-tunes without dropout (`drop_rate: 0.0` in BASE_CONFIG). */
export const BOOK_DROP_RATE = 0.0;

/** GPT-2's initialisation: weights drawn from normal(0, 0.02) (the GPT-2 paper, nanoGPT). */
export const INIT_STD = 0.02;

/** Section 7.7: responses of at most 256 new tokens. */
export const BOOK_MAX_NEW_TOKENS = 256;

/** The size of every loss chart, in CSS pixels (the book's figures are about this shape). */
export const PLOT_SIZE = { width: 760, height: 420 } as const;

/**
 * Exercise 7.4 (appendix E): LoRA of rank 16 on every linear layer, output head included.
 * The scale is alpha / rank, as the book's repository computes it since September 2025 (the printed
 * appendix multiplied by alpha alone; at rank 16 that equals alpha 256 here).
 */
export const BOOK_LORA_RANK = 16;
/** Exercise 7.4's LoRA alpha. */
export const BOOK_LORA_ALPHA = 16;

/** Section 7.8: the judge, Llama 3 8B as Ollama names it. */
export const BOOK_JUDGE_MODEL = "llama3";
/** Section 7.8: where Ollama listens unless told otherwise. */
export const OLLAMA_DEFAULT_HOST = "http://localhost:11434";
/**
 * Section 7.8: the judge's options for repeatable scores, as the book's code sends them: a fixed
 * seed, temperature 0 (always the most likely token), and a 2,048-token context window.
 */
export const BOOK_JUDGE_OPTIONS = { seed: 123, temperature: 0, num_ctx: 2048 } as const;

/** The DPO bonus (ch07/04): β = 0.1 in the loss, "a value between 0.1 and 0.5" (larger keeps the policy closer to the reference). */
export const BOOK_DPO_BETA = 0.1;
/** ch07/04: `torch.optim.AdamW(policy_model.parameters(), lr=5e-6, weight_decay=0.01)`: "a very small learning rate". */
export const BOOK_DPO_LR = 5e-6;
/** ch07/04: AdamW's weight decay for DPO. */
export const BOOK_DPO_WEIGHT_DECAY = 0.01;
/** ch07/04: `num_epochs = 1`: "DPO is very prone to collapse". */
export const BOOK_DPO_EPOCHS = 1;
