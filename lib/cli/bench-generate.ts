/**
 * The bench's generation timings (lib/cli/bench.ts): greedy with the key/value cache, exactly
 * `maxNewTokens` new tokens per prompt (no end-of-text id, so every side makes the same count),
 * one prompt at a time as `generate` and `generateResponse` run it, then in batches as `finetune`
 * and notebook 06 run it.
 */
import { generateIds } from "../generate/generate";
import { generateIdsBatched } from "../generate/batch";
import type { GPTModel } from "../model/gpt";
import { round } from "./common";

/** Time both ways of generating for `prompts`; the bench's gen_* fields. */
export async function benchGeneration(
  model: GPTModel,
  prompts: number[][],
  opts: { maxNewTokens: number; batchSize: number },
  say: (line: string) => void,
): Promise<Record<string, number | null>> {
  const genOpts = { maxNewTokens: opts.maxNewTokens, contextSize: model.cfg.contextLength, kvCache: true };
  if (prompts.length === 0) return { gen_tokens: 0, gen_tokens_per_s: null, gen_batch: opts.batchSize, gen_batch_tokens_per_s: null };
  await generateIds(model, prompts.slice(0, 1), { ...genOpts, maxNewTokens: 2 }); // warm-up, as the reference does
  const newTokens = (rows: number[][]) => rows.reduce((n, row, i) => n + row.length - prompts[i].length, 0);

  const g0 = performance.now();
  const rows: number[][] = [];
  for (const ids of prompts) rows.push((await generateIds(model, [ids], genOpts))[0]);
  const single = newTokens(rows);
  const singleSeconds = (performance.now() - g0) / 1000;
  say(`generated ${single} tokens one prompt at a time in ${singleSeconds.toFixed(2)} s`);

  const b0 = performance.now();
  const batched = newTokens(await generateIdsBatched(model, prompts, { ...genOpts, batchSize: opts.batchSize }));
  const batchSeconds = (performance.now() - b0) / 1000;
  say(`generated ${batched} tokens in batches of ${opts.batchSize} in ${batchSeconds.toFixed(2)} s`);
  return {
    gen_tokens: single,
    gen_tokens_per_s: round(single / singleSeconds),
    gen_s: round(singleSeconds),
    gen_batch: opts.batchSize,
    gen_batch_tokens: batched,
    gen_batch_tokens_per_s: round(batched / batchSeconds),
    gen_batch_s: round(batchSeconds),
  };
}
