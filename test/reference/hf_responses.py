"""transformers' side of `npm run bench -- --responses DIR --vs-torch` (lib/cli/bench-responses.ts).

    python3 test/reference/hf_responses.py JOB.json [--threads N]

JOB.json holds the folder of a fine-tuned model as `finetune` saves it (config.json + model.safetensors,
which GPT2LMHeadModel.from_pretrained reads), the test set's prompts as token ids, the batch size, the
most new tokens and the end-of-text id. This script generates every response the way transformers is
used for it: prompts sorted by length, batches of left-padded prompts with an attention mask, greedy,
KV cache, each row done at its end-of-text (transformers keeps a finished row in its batch, padding it,
until the whole batch is done). It prints one JSON line: versions, the wall time of all batches, the
new tokens (up to each row's end-of-text, which is not counted), and each prompt's new token ids in the
job's order, for the TypeScript side to compare with its own.
"""
import json
import sys
import time

import torch

from bench_job import left_padded, read_job


def main():
    job = read_job()
    import transformers
    from transformers import GPT2LMHeadModel

    model = GPT2LMHeadModel.from_pretrained(job["model_dir"]).eval()
    eos, m, b = job["eos_id"], job["max_new_tokens"], job["batch"]
    prompts = job["prompts"]

    def run(indices, max_new):
        batch = [prompts[i] for i in indices]
        ids, mask, width = left_padded(batch, eos)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=max_new,
                                 eos_token_id=eos, pad_token_id=eos, use_cache=True)
        rows = []
        for row in out[:, width:].tolist():
            rows.append(row[: row.index(eos)] if eos in row else row)
        return rows

    run([0], 2)  # warm-up, as the TypeScript side does
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    new = [None] * len(prompts)
    t0 = time.perf_counter()
    for start in range(0, len(order), b):
        chunk = order[start:start + b]
        for i, row in zip(chunk, run(chunk, m)):
            new[i] = row
        print(f"transformers: {min(start + b, len(order))}/{len(order)} responses", file=sys.stderr)
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "seconds": float(f"{seconds:.4g}"),
        "tokens": sum(len(r) for r in new),
        "rows": new,
    }))


if __name__ == "__main__":
    main()
