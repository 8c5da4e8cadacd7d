/**
 * Generation for many prompts at once: the optimised twin of calling `generateIds` with the key/value
 * cache for one prompt after another, and checked token for token against it (test/generate-batch.test.ts).
 *
 * Prompts of different lengths share one batch by left padding: each row gets padding columns in front
 * so that every row's newest token sits in the last column, the cache gives each row its own positions
 * (its text starts at position 0) and a bias that keeps every query from attending to padding
 * (lib/model/kv-cache.ts). One forward pass then feeds the whole batch its next tokens. A row stops at its
 * own <|endoftext|> and leaves the batch; columns that are padding in every remaining row are cut off.
 * Prompts are sorted by length before they are batched, so a batch holds little padding.
 *
 * Greedy decoding only: sampling (temperature > 0) and the book's plain loop (`kvCache: false`) run one
 * prompt after another, as does a prompt that would outgrow the context window (the one-prompt loop
 * then crops it, which shifts every position).
 */
import * as tf from "@tensorflow/tfjs";
import { BOOK_MAX_NEW_TOKENS, BOOK_SEED } from "../core/book";
import { ConfigError } from "../core/errors";
import { Rng } from "../core/random";
import { formatInput } from "../data/prompt";
import { decodeTokens, encodeText, END_OF_TEXT } from "../data/tokenizer";
import type { InstructionEntry } from "../data/instruction-data";
import type { GPTModel } from "../model/gpt";
import { cachedDecoder, greedyNext } from "./decoder";
import { extractResponse, GenerateOptions, generateIds, ResponseOptions, validateGenerateOptions } from "./generate";

/** Prompts per batch unless told otherwise: the book's batch size. */
export const GENERATE_BATCH_SIZE = 8;

export interface BatchOptions {
  /** prompts generated together (default GENERATE_BATCH_SIZE) */
  batchSize?: number;
  /** called as prompts finish, with how many just did (for a progress bar) */
  onProgress?: (done: number) => void;
}

/**
 * Extend each prompt by up to `maxNewTokens` tokens, stopping each at `eosId`: the same ids, in the same
 * order, as `prompts.map((p) => generateIds(model, [p], { ...opts, kvCache: true })[0])`.
 */
export async function generateIdsBatched(model: GPTModel, prompts: number[][], opts: GenerateOptions & BatchOptions): Promise<number[][]> {
  const { contextSize, temperature } = validateGenerateOptions(opts, model);
  const batchSize = opts.batchSize ?? GENERATE_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError(`generate: batchSize must be a positive integer, got ${batchSize}`);
  prompts.forEach((p, i) => {
    if (p.length === 0) throw new ConfigError(`generate: prompt ${i} has no tokens`);
  });
  const out: number[][] = new Array(prompts.length);
  const rng = opts.rng ?? new Rng(opts.seed ?? BOOK_SEED);
  const oneByOne = async (i: number) => {
    out[i] = (await generateIds(model, [prompts[i]], { ...opts, rng }))[0];
    opts.onProgress?.(1);
  };
  if (temperature > 0 || opts.kvCache === false) {
    for (let i = 0; i < prompts.length; i++) await oneByOne(i);
    return out;
  }
  // a prompt fits when its last forward pass (prompt + maxNewTokens - 1 tokens) needs no cropping
  const fits = (i: number) => prompts[i].length + Math.max(opts.maxNewTokens - 1, 0) <= contextSize;
  const order = prompts.map((_, i) => i).filter(fits).sort((a, b) => prompts[a].length - prompts[b].length || a - b);
  for (let start = 0; start < order.length; start += batchSize) {
    const rows = order.slice(start, start + batchSize);
    const ids = await generateBatch(model, rows.map((i) => prompts[i]), opts.maxNewTokens, opts.eosId);
    rows.forEach((i, b) => (out[i] = ids[b]));
    opts.onProgress?.(rows.length);
  }
  for (let i = 0; i < prompts.length; i++) if (!fits(i)) await oneByOne(i);
  return out;
}


/** Greedy generation for one batch of prompts that all fit the context (see the file comment). */
async function generateBatch(model: GPTModel, prompts: number[][], maxNewTokens: number, eosId: number | undefined): Promise<number[][]> {
  const { vocabSize } = model.cfg;
  const out = prompts.map((p) => p.slice());
  const width = Math.max(...prompts.map((p) => p.length));
  const cache = cachedDecoder(model, width + maxNewTokens);
  cache.setPadding(prompts.map((p) => width - p.length));
  // the padding columns hold token 0 (any id would do: no query attends to them)
  let fed = prompts.map((p) => [...new Array<number>(width - p.length).fill(0), ...p]); // (B, width)
  let active = prompts.map((_, b) => b); // the output row of each batch row
  try {
    for (let step = 0; step < maxNewTokens && active.length > 0; step++) {
      const next = await greedyNext(cache, fed, vocabSize); // (B, t) -> each row's greedy pick after its last position
      const keep = next.flatMap((id, b) => (id === eosId ? [] : [b]));
      for (const b of keep) out[active[b]].push(next[b]);
      if (keep.length === 0) break;
      if (keep.length < active.length) await cache.keepRows(keep);
      active = keep.map((b) => active[b]);
      fed = keep.map((b) => [next[b]]); // (B', 1)
    }
  } finally {
    cache.reset();
  }
  return out;
}

/**
 * `generateResponse` for many entries at once (section 7.7: prompt = formatInput(entry, promptStyle), greedy,
 * stop at <|endoftext|>, the response after the prompt), generated in batches: the same responses, in order.
 */
export async function generateResponses(
  model: GPTModel,
  entries: Pick<InstructionEntry, "instruction" | "input">[],
  opts: ResponseOptions & BatchOptions = {},
): Promise<string[]> {
  const prompts = entries.map((e) => formatInput(e, opts.promptStyle));
  const ids = await generateIdsBatched(model, prompts.map((p) => encodeText(p)), {
    ...opts,
    maxNewTokens: opts.maxNewTokens ?? BOOK_MAX_NEW_TOKENS,
    eosId: opts.eosId ?? END_OF_TEXT,
    kvCache: opts.kvCache ?? true,
  });
  return ids.map((row, i) => extractResponse(decodeTokens(row), prompts[i], opts.promptStyle));
}
