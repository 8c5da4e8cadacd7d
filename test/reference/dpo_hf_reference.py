"""The --loss-only check of `npm run dpo` (test/cli-dpo.test.ts): two random GPT-2 checkpoints that no
fixture has seen, written by Hugging Face transformers, and the book's DPO loss over a loader on them.

    python test/reference/dpo_hf_reference.py JOB.json

JOB.json (written by the test): the seed, the folder to write into, the GPT-2 sizes, the entries' token ids
(the library's tokenizer: this Python has no tiktoken), the batch size and beta. This script makes a
GPT2LMHeadModel for the policy (seed) and one for the reference (seed + 1), with larger initial weights
than GPT-2's 0.02 so that the two disagree clearly, saves them with save_pretrained (config.json +
model.safetensors) into DIR/policy and DIR/reference, and prints one JSON line: the means of the loss and
the chosen and rejected rewards over the entries in file order, batches of batchSize, the last one
short (dpo_reference.py's functions: the book's ch07/04 code, re-written).
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from dpo_reference import collate, loader_means  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    import transformers
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = job["config"]
    config = GPT2Config(vocab_size=50257, n_positions=cfg["n_positions"], n_embd=cfg["n_embd"], n_layer=cfg["n_layer"],
                        n_head=cfg["n_head"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                        initializer_range=cfg["initializer_range"])
    models = {}
    for name, seed in (("policy", job["seed"]), ("reference", job["seed"] + 1)):
        torch.manual_seed(seed)
        model = GPT2LMHeadModel(config).eval()
        model.save_pretrained(os.path.join(job["dir"], name), safe_serialization=True)
        models[name] = lambda ids, m=model: m(ids).logits  # the book's models return logits
    enc, bs = job["encoded"], job["batchSize"]
    batches = [collate(enc[i:i + bs], allowed_max_length=cfg["n_positions"]) for i in range(0, len(enc), bs)]
    means = loader_means(batches, models["policy"], models["reference"], job["beta"])
    print(json.dumps({**means, "margin": means["chosenReward"] - means["rejectedReward"], "batches": len(batches),
                      "transformers": transformers.__version__, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
