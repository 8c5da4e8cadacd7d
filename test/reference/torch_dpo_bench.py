"""PyTorch reference for `npm run bench -- --dpo --vs-torch` (lib/cli/bench-dpo.ts).

    python3 test/reference/torch_dpo_bench.py JOB.json [--threads N]

JOB.json (written by bench-dpo.ts) holds the model config, the seed, AdamW's settings, β, optionally
`lora` ({rank, alpha}), and the very preference batches the TypeScript run took (chosen and rejected
token ids, their masks). The step is the book's (ch07/04, dpo-from-scratch.ipynb), as re-written in
dpo_reference.py: the policy's mean log-probabilities of chosen and of rejected (two forward passes,
log-softmax over the whole vocabulary), the reference's under no_grad, the DPO loss, backward and
torch.optim.AdamW. Model: reference_model.py's GPT from torch's own random init (the seed); the
reference is a frozen deep copy of it, as the book keeps two models; with `lora` the policy then gets
lora_reference.py's adapter beside every linear layer (the reference stays the plain copy).

Prints one JSON line with bench-dpo.ts's fields: step_s (median), train_tokens_per_s (chosen + rejected
tokens with padding), first_loss and last_loss (ln 2 = 0.693 first: the reference equals the policy),
trainable_params and peak_rss_mib. Progress goes to stderr.
"""
import copy
import json
import resource
import statistics
import sys
import time

import torch

from bench_job import read_job
from dpo_reference import batch_terms
from lora_reference import LoRAGPT


def main():
    job = read_job()
    torch.manual_seed(job["seed"])
    policy = LoRAGPT(job["config"])
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    if job.get("lora"):
        policy.add_lora(job["lora"]["rank"], job["lora"]["alpha"])
    policy.train()
    trainable = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=job["lr"], weight_decay=job["weight_decay"])

    times, losses, tokens = [], [], 0
    for i, raw in enumerate(job["batches"]):
        t0 = time.perf_counter()
        batch = {k: torch.tensor(v, dtype=torch.bool if k.endswith("_mask") else torch.long) for k, v in raw.items()}
        optimizer.zero_grad()
        (loss, _, _), _ = batch_terms(batch, policy, reference, job["beta"])
        loss.backward()
        optimizer.step()
        value = loss.item()
        dt = time.perf_counter() - t0
        times.append(dt)
        losses.append(value)
        tokens += batch["chosen"].numel() + batch["rejected"].numel()
        print(f"torch DPO step {i + 1}/{len(job['batches'])}: {tuple(batch['chosen'].shape)} each, loss {value:.4f} in {dt:.2f} s", file=sys.stderr)

    r = lambda x: float(f"{x:.4g}")
    print(json.dumps({
        "impl": "torch",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "reference": "copy",
        "trainable_params": sum(p.numel() for p in trainable),
        "steps": len(times),
        "step_s": r(statistics.median(times)),
        "train_tokens_per_s": r(tokens / sum(times)),
        "first_loss": float(f"{losses[0]:.5g}"),
        "last_loss": float(f"{losses[-1]:.5g}"),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
