/**
 * `npm run bench -- --responses DIR [--vs-torch] [--gen-batch B] [--max-new-tokens M]`: the test set's
 * responses, as `finetune` and notebook 06 make them, timed against transformers.
 *
 * DIR is a fine-tuned model as `finetune` saves it (`model/`: config.json + model.safetensors). Ours:
 * every test prompt (the book's split of --data, formatted with the Alpaca template), greedy, KV cache,
 * batches of B sorted by length, each row leaving its batch at <|endoftext|> (`generateIdsBatched`,
 * which `generateResponses` runs). transformers (test/reference/hf_responses.py): the same folder through
 * GPT2LMHeadModel.from_pretrained, the same prompts, batches and stop, its `generate` with left padding.
 * Both sides make the same tokens when the arithmetic agrees; the line says for how many prompts they
 * do (float32 on two libraries can flip a near-tie, after which a response differs).
 */
import { END_OF_TEXT, encodeText } from "../data/tokenizer";
import { formatInput } from "../data/prompt";
import { loadInstructionData } from "../data/instruction-data";
import { splitData } from "../data/split";
import { generateIdsBatched } from "../generate/batch";
import { loadGPT2Directory } from "../weights/gpt2-directory";
import { runReferenceScript } from "./bench-torch";
import { round } from "./common";

export interface ResponsesBenchOptions {
  data: string;
  maxNewTokens: number;
  batchSize: number;
  vsTorch: boolean;
}

/** The `--responses` line: ours, transformers' (with --vs-torch) and the ratio of their token rates. */
export async function benchResponses(dir: string, opts: ResponsesBenchOptions, say: (line: string) => void): Promise<Record<string, unknown>> {
  const model = await loadGPT2Directory(dir);
  const { test } = splitData(await loadInstructionData(opts.data), { source: opts.data });
  const prompts = test.map((entry) => encodeText(formatInput(entry)));
  const genOpts = { maxNewTokens: opts.maxNewTokens, eosId: END_OF_TEXT, kvCache: true, batchSize: opts.batchSize };
  await generateIdsBatched(model, prompts.slice(0, 1), { ...genOpts, maxNewTokens: 2 }); // warm-up, as the reference does
  const t0 = performance.now();
  let done = 0;
  const rows = await generateIdsBatched(model, prompts, {
    ...genOpts,
    onProgress: (n) => {
      done += n;
      if (done % 20 < n || done === prompts.length) say(`ours: ${done}/${prompts.length} responses`);
    },
  });
  const seconds = (performance.now() - t0) / 1000;
  model.dispose();
  const newIds = rows.map((row, i) => row.slice(prompts[i].length));
  const tokens = newIds.reduce((n, r) => n + r.length, 0);
  say(`ours: ${prompts.length} responses, ${tokens} new tokens in ${seconds.toFixed(2)} s`);
  const line: Record<string, unknown> = {
    responses: prompts.length,
    batch: opts.batchSize,
    max_new_tokens: opts.maxNewTokens,
    seconds: round(seconds),
    tokens,
    tokens_per_s: round(tokens / seconds),
  };
  if (!opts.vsTorch) return line;
  const job = { model_dir: dir, prompts, max_new_tokens: opts.maxNewTokens, batch: opts.batchSize, eos_id: END_OF_TEXT };
  const hf = runReferenceScript("hf_responses.py", job, `the same ${prompts.length} prompts`, say);
  if (hf.skipped !== undefined) return { ...line, transformers: hf };
  const theirs = hf.rows as number[][];
  const same = newIds.filter((r, i) => r.length === theirs[i].length && r.every((t, j) => t === theirs[i][j])).length;
  const hfSeconds = hf.seconds as number;
  const hfTokens = hf.tokens as number;
  return {
    ...line,
    transformers: { transformers: hf.transformers, torch: hf.torch, threads: hf.threads, seconds: hfSeconds, tokens: hfTokens, tokens_per_s: round(hfTokens / hfSeconds) },
    same_tokens: same,
    ratio: { seconds: round(seconds / hfSeconds), tokens_per_s: round(tokens / seconds / (hfTokens / hfSeconds)) },
  };
}
