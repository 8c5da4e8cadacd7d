/**
 * Text generation, as the book's `generate` (chapter 5) and the response
 * extraction of chapter 7 (section 7.7).
 *
 * One new token per step: run the model on the last `contextSize` tokens, take the
 * logits of the last position, then
 *   - temperature 0: pick the most likely token (greedy, deterministic);
 *   - temperature > 0: keep the `topK` largest logits (if given), divide by the
 *     temperature, softmax, and draw a token with a seeded Rng.
 * Stop after `maxNewTokens`, or as soon as the model picks `eosId` (the eos token is
 * not appended, as in the book).
 */
import * as tf from "@tensorflow/tfjs";
import { BOOK_MAX_NEW_TOKENS, BOOK_SEED } from "../core/book";
import { ConfigError } from "../core/errors";
import { Rng } from "../core/random";
import { formatInput, PromptStyle, responseMarker } from "../data/prompt";
import { decodeTokens, encodeText, END_OF_TEXT } from "../data/tokenizer";
import type { InstructionEntry } from "../data/instruction-data";
import type { GPTModel } from "../model/gpt";
import { cachedDecoder, greedyNext } from "./decoder";

export interface GenerateOptions {
  /** how many tokens to add at most */
  maxNewTokens: number;
  /** the model's context length: only the last `contextSize` tokens are fed (default: model.cfg.contextLength) */
  contextSize?: number;
  /** 0 (default) = greedy; > 0 = sample from softmax(logits / temperature) */
  temperature?: number;
  /** sample only among the k most likely tokens (ties with the k-th are kept, as in the book) */
  topK?: number;
  /** stop when this token is chosen, e.g. END_OF_TEXT; default: never stop early */
  eosId?: number;
  /** the random stream for sampling; default new Rng(seed) */
  rng?: Rng;
  /** seed for the default Rng (default BOOK_SEED, the book's torch.manual_seed(123)) */
  seed?: number;
  /** reuse earlier tokens' keys and values (a KVCache through model.forward): same tokens, much faster; default false */
  kvCache?: boolean;
  /**
   * called after each step with the tokens just added (one per row; not the eos that ends it), and awaited;
   * returning false stops there (a chat client that went away). The chat server streams tokens from here.
   */
  onToken?: (next: number[]) => boolean | void | Promise<boolean | void>;
}

/** Choose the next token from one row of logits (length V); see the file comment. */
export function pickNextToken(logits: Float32Array, temperature: number, topK: number | undefined, rng: Rng): number {
  let cutoff = -Infinity;
  if (topK !== undefined) {
    // the k-th largest logit: everything below it is dropped (the book's torch.topk + where)
    const sorted = Float32Array.from(logits).sort();
    cutoff = sorted[Math.max(0, sorted.length - Math.min(topK, sorted.length))];
  }
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i; // first max, as torch.argmax
    return best;
  }
  // softmax over the kept logits, shifted by the max so exp() cannot overflow
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] >= cutoff && logits[i] > max) max = logits[i];
  const weights = new Float64Array(logits.length);
  let total = 0;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] < cutoff) continue;
    weights[i] = Math.exp((logits[i] - max) / temperature);
    total += weights[i];
  }
  // inverse-CDF draw, the equivalent of torch.multinomial(probs, 1)
  let u = rng.next() * total;
  let last = 0;
  for (let i = 0; i < weights.length; i++) {
    if (weights[i] === 0) continue;
    last = i;
    u -= weights[i];
    if (u < 0) return i;
  }
  return last; // rounding left u a hair above 0: the last kept token
}

export function validateGenerateOptions(opts: GenerateOptions, model: GPTModel): Required<Pick<GenerateOptions, "contextSize" | "temperature">> {
  const contextSize = opts.contextSize ?? model.cfg.contextLength;
  const temperature = opts.temperature ?? 0;
  if (!Number.isInteger(opts.maxNewTokens) || opts.maxNewTokens < 0) {
    throw new ConfigError(`generate: maxNewTokens must be an integer >= 0, got ${opts.maxNewTokens}`);
  }
  if (!Number.isInteger(contextSize) || contextSize <= 0 || contextSize > model.cfg.contextLength) {
    throw new ConfigError(`generate: contextSize must be an integer in [1, ${model.cfg.contextLength}], got ${contextSize}`);
  }
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new ConfigError(`generate: temperature must be a finite number >= 0, got ${temperature}`);
  }
  if (opts.topK !== undefined && (!Number.isInteger(opts.topK) || opts.topK <= 0)) {
    throw new ConfigError(`generate: topK must be a positive integer, got ${opts.topK}`);
  }
  return { contextSize, temperature };
}

/**
 * Extend every row of `idx` (B, T) by up to `maxNewTokens` tokens; returns the token
 * ids as plain arrays (prompt + new tokens). With a batch, generation stops early only
 * when every row picks `eosId` at the same step (the book's loop is for one row).
 * Asynchronous: each step's logits are read with `await data()`, which works on every engine.
 */
export async function generateIds(model: GPTModel, idx: number[][], opts: GenerateOptions): Promise<number[][]> {
  const { contextSize, temperature } = validateGenerateOptions(opts, model);
  const rng = opts.rng ?? new Rng(opts.seed ?? BOOK_SEED);
  const rows = idx.map((r) => r.slice());
  if (rows.length === 0 || rows[0].length === 0) throw new ConfigError("generate: the prompt has no tokens");
  const vocab = model.cfg.vocabSize;
  // the cache (TF.js, or the course's kernels on webgpu) holds at most the context window
  const cache = opts.kvCache ? cachedDecoder(model, Math.min(contextSize, rows[0].length + opts.maxNewTokens)) : null;
  try {
    for (let step = 0; step < opts.maxNewTokens; step++) {
      const t = Math.min(rows[0].length, contextSize);
      let values: Float32Array | null = null;
      let next: number[] = [];
      if (cache !== null) {
        // only the tokens the cache has not seen; once the text outgrows the context, start
        // again on the cropped window, since every position shifts (what the plain loop does)
        if (rows[0].length > contextSize) cache.reset();
        const fresh = cache.length === 0 ? t : rows[0].length - cache.length;
        const fed = rows.map((r) => r.slice(r.length - fresh)); // (B, fresh)
        // greedy: each row's pick found on the engine, not its V logits read back (decoder.ts)
        if (temperature <= 0) next = await greedyNext(cache, fed, vocab);
        else values = await cache.next(fed); // logits (B, V) of the last position
      } else {
        // (B, T) -> logits (B, 1, V) of the last position only, pulled to JS
        const last = tf.tidy(() => {
          const cond = tf.tensor2d(rows.map((r) => r.slice(-contextSize)), [rows.length, t], "int32"); // (B, t)
          const logits = model.forward(cond, false); // (B, t, V)
          return logits.slice([0, t - 1, 0], [rows.length, 1, vocab]); // (B, 1, V)
        });
        try {
          values = (await last.data()) as Float32Array;
        } finally {
          last.dispose();
        }
      }
      if (values !== null) {
        const logits = values;
        next = rows.map((_, b) => pickNextToken(logits.subarray(b * vocab, (b + 1) * vocab), temperature, opts.topK, rng));
      }
      if (opts.eosId !== undefined && next.every((id) => id === opts.eosId)) break;
      next.forEach((id, b) => rows[b].push(id));
      if (opts.onToken && (await opts.onToken(next)) === false) break;
    }
  } finally {
    cache?.reset();
  }
  return rows;
}

/** The book's `generate`: idx (B, T) int32 tensor in, a new (B, T + n) int32 tensor out (caller disposes both). */
export async function generate(model: GPTModel, idx: tf.Tensor2D | number[][], opts: GenerateOptions): Promise<tf.Tensor2D> {
  const rows = Array.isArray(idx) ? idx : ((await idx.array()) as number[][]);
  const out = await generateIds(model, rows, opts);
  return tf.tensor2d(out, [out.length, out[0].length], "int32");
}

/**
 * The book's `text_to_token_ids`: (1, T) int32 tensor. As the book's
 * `allowed_special={"<|endoftext|>"}`, the literal marker is the special token here
 * unless `allowEndOfText` is false.
 */
export function textToTokenIds(text: string, allowEndOfText = true): tf.Tensor2D {
  const ids = encodeText(text, { allowEndOfText });
  return tf.tensor2d([ids], [1, ids.length], "int32");
}

/** The book's `token_ids_to_text`: a (1, T) tensor or plain ids -> text (a tensor is read with `await data()`). */
export async function tokenIdsToText(ids: tf.Tensor | number[] | number[][]): Promise<string> {
  const flat = Array.isArray(ids) ? (ids.flat() as number[]) : Array.from(await ids.data());
  return decodeTokens(flat);
}

export type ResponseOptions = Partial<GenerateOptions> & {
  /** the prompt format the model was fine-tuned on (default "alpaca"; "phi3": exercise 7.1) */
  promptStyle?: PromptStyle;
};

/**
 * Section 7.7: the prompt is `formatInput(entry)` alone (the model writes the
 * "### Response:" header itself, having learned it), generation stops at
 * <|endoftext|>, and the response is the text after the prompt with
 * "### Response:" removed and surrounding whitespace trimmed. With `promptStyle: "phi3"`
 * (exercise 7.1) the prompt is the Phi-3 format and "<|assistant|>:" is removed instead.
 * Defaults as the book: BOOK_MAX_NEW_TOKENS (256) new tokens, greedy, eos = END_OF_TEXT; with the key/value
 * cache on (same tokens, many times faster; `kvCache: false` runs the book's plain loop).
 */
export async function generateResponse(
  model: GPTModel,
  entry: Pick<InstructionEntry, "instruction" | "input">,
  opts: ResponseOptions = {},
): Promise<string> {
  return responseForPrompt(model, formatInput(entry, opts.promptStyle), opts);
}

/** Like `generateResponse`, for a raw prompt string (the CLI's `--prompt`). */
export async function responseForPrompt(model: GPTModel, prompt: string, opts: ResponseOptions = {}): Promise<string> {
  // data text is encoded as text: a literal "<|endoftext|>" in an entry is not the eos token
  const promptIds = encodeText(prompt);
  const [ids] = await generateIds(model, [promptIds], {
    ...opts,
    maxNewTokens: opts.maxNewTokens ?? BOOK_MAX_NEW_TOKENS,
    eosId: opts.eosId ?? END_OF_TEXT,
    kvCache: opts.kvCache ?? true,
  });
  return extractResponse(decodeTokens(ids), prompt, opts.promptStyle);
}

/**
 * The response in a generated text: what follows the prompt, with the response header removed
 * and whitespace trimmed (the book's `generated_text[len(input_text):].replace("### Response:", "").strip()`,
 * with "<|assistant|>:" for the Phi-3 format).
 */
export function extractResponse(generated: string, prompt: string, style: PromptStyle = "alpaca"): string {
  // the header without its newlines: the model may space it differently.
  // split/join: Python's str.replace removes every occurrence, not just the first
  return generated.slice(prompt.length).split(responseMarker(style)).join("").trim();
}
