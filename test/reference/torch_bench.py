"""PyTorch reference benchmark for `npm run bench -- --vs-torch` (lib/cli/bench.ts).

Run by the TypeScript side with $COURSE_PYTHON, else $COURSE_HF_PYTHON, else the project's .cache/venv
(pip's newest torch and transformers, made by .ci/run), else python3 on the PATH:

    python3 test/reference/torch_bench.py JOB.json [--threads N]

JOB.json (written by bench.ts) holds the model config, the seed, AdamW's settings, the very
events the TypeScript run replayed — training batches (inputs and targets, -100 where ignored)
and, with --schedule, evaluations (mean loss of some batches, eval mode, no gradients) — and the
prompts' token ids, and with `lora` ({rank, alpha}) the book's appendix-E LoRA (lora_reference.py:
every weight frozen, LoRA beside every linear layer). This script trains the book's own chapter-7 code on those
batches (book_model.py: the book's GPTModel, its calc_loss_batch, `torch.optim.AdamW` as the book calls it; with
`lora`, appendix E's LinearWithLoRA), or, with job["reference"] = "compact", reference_model.py's GPT on torch's
fused layers (F.layer_norm, F.gelu: the stricter anchor, which keeps fewer tensors for the backward pass) with
lora_reference.py's LoRA; then generates greedily (the book's `generate_text_simple`: no KV cache), and prints one
JSON line with the same fields as bench.ts:
step_s (median), train_tokens_per_s (padded), real_tokens_per_s, gen_tokens_per_s, peak_rss_mib,
and schedule_s (wall time of all events) when there are evaluations. Progress goes to stderr.

Where transformers is installed it also times Hugging Face's `generate` on the same prompts:
GPT2LMHeadModel built from the same config (random weights of the same shapes), greedy, KV cache,
one prompt at a time (hf_gen_tokens_per_s) and in batches of job["gen_batch"] left-padded prompts
with an attention mask, as transformers requires (hf_gen_batch_tokens_per_s). Every prompt gets
exactly max_new_tokens new tokens on both sides (bench.ts gives no end-of-text id; here
min_new_tokens = max_new_tokens), so the counts are the same.
"""
import json
import resource
import statistics
import sys
import time

import torch

from bench_job import left_padded, read_job
from book_model import GPTModel, add_book_lora, book_config, calc_loss_batch, generate_text_simple
from lora_reference import LoRAGPT
from reference_model import batch_loss, greedy_tokens


def build_reference(job, device):
    """(model, loss(model, inputs, targets), greedy(model, ids, n)) for job["reference"]: "book" (default) or "compact"."""
    cfg = job["config"]
    if job.get("reference", "book") == "book":
        model = GPTModel(book_config(cfg))
        if job.get("lora"):
            add_book_lora(model, job["lora"]["rank"], job["lora"]["alpha"])
        loss = lambda m, x, y: calc_loss_batch(x, y, m, device)
        greedy = lambda m, ids, n: generate_text_simple(m, ids, n, cfg["contextLength"])
        return model, loss, greedy
    model = LoRAGPT(cfg)  # ReferenceGPT, plus LoRA layers when the job asks for them
    if job.get("lora"):
        # appendix E: freeze every weight, a LoRA layer beside every linear layer (head included)
        model.add_lora(job["lora"]["rank"], job["lora"]["alpha"])
    greedy = lambda m, ids, n: greedy_tokens(m, ids, n, cfg["contextLength"], job["eos_id"])
    return model, batch_loss, greedy


def main():
    job = read_job()
    cfg = job["config"]
    # "cpu", or "cuda" to time the reference on the GPU beside ours (bench --torch-device cuda); fp32 either way
    device = torch.device(job.get("device", "cpu"))
    torch.manual_seed(job["seed"])
    model, batch_loss, greedy = build_reference(job, device)
    model.to(device).train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=job["lr"], weight_decay=job["weight_decay"])

    times, padded, real, evals = [], 0, 0, 0
    steps = sum(1 for e in job["events"] if "train" in e)
    s0 = time.perf_counter()
    for event in job["events"]:
        if "eval" in event:
            model.eval()
            with torch.no_grad():
                losses = [batch_loss(model, torch.tensor(b["inputs"], device=device), torch.tensor(b["targets"], device=device)).item()
                          for b in event["eval"]]
            model.train()
            evals += 1
            continue
        batch, i = event["train"], len(times)
        t0 = time.perf_counter()
        inputs = torch.tensor(batch["inputs"], dtype=torch.long, device=device)
        targets = torch.tensor(batch["targets"], dtype=torch.long, device=device)
        optimizer.zero_grad()
        loss = batch_loss(model, inputs, targets)
        loss.backward()
        optimizer.step()
        value = loss.item()
        dt = time.perf_counter() - t0
        times.append(dt)
        padded += inputs.numel()
        real += int((targets != -100).sum())
        if not evals or i % 20 == 0:
            print(f"torch step {i + 1}/{steps}: {tuple(inputs.shape)} loss {value:.3f} in {dt:.2f} s", file=sys.stderr)
    schedule_seconds = time.perf_counter() - s0
    train_seconds = sum(times)

    model.eval()
    gen_tokens, g0 = 0, time.perf_counter()
    for ids in job["prompts"]:
        out = greedy(model, torch.tensor([ids], device=device), job["max_new_tokens"])
        gen_tokens += out.shape[1] - len(ids)
    gen_seconds = time.perf_counter() - g0
    train_peak_mib = peak_rss_mib()
    gpu_peak = {"peak_gpu_mib": round(torch.cuda.max_memory_allocated(device) / 2**20), "gpu": torch.cuda.get_device_name(device)} if device.type == "cuda" else {}
    del model, optimizer
    hf = hf_generate(cfg, job, device) if job["prompts"] else {}

    r = lambda x: float(f"{x:.4g}")
    print(json.dumps({
        "impl": "torch",
        "reference": job.get("reference", "book"),
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "threads": torch.get_num_threads(),
        "trainable_params": sum(p.numel() for p in trainable),
        "steps": len(times),
        "step_s": r(statistics.median(times)),
        "train_tokens_per_s": r(padded / train_seconds),
        "real_tokens_per_s": r(real / train_seconds),
        **({"schedule_s": r(schedule_seconds), "evaluations": evals} if evals else {}),
        "gen_tokens": gen_tokens,
        "gen_tokens_per_s": r(gen_tokens / gen_seconds) if job["prompts"] else None,
        "peak_rss_mib": train_peak_mib,
        "device": str(device),
        **gpu_peak,
        **hf,
    }))


def peak_rss_mib():
    """This process's own peak resident memory: the kernel's VmHWM, which starts again at exec.

    Not getrusage's ru_maxrss: on Linux that survives execve, so a Python started by the Node bench reports the
    Node process's peak when that was higher (how an earlier version of this script reported 8,528 MiB for a
    reference that peaks at ~3.7 GiB on its own).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20))


def hf_generate(cfg, job, device):
    """Hugging Face transformers' generate on the job's prompts (see the module comment); {} without transformers."""
    try:
        import transformers
        from transformers import GPT2Config, GPT2LMHeadModel
    except ImportError:
        print("torch_bench: no transformers for this Python: no generate reference", file=sys.stderr)
        return {"transformers": None}
    config = GPT2Config(vocab_size=cfg["vocabSize"], n_positions=cfg["contextLength"], n_embd=cfg["embDim"],
                        n_layer=cfg["nLayers"], n_head=cfg["nHeads"], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    torch.manual_seed(job["seed"])
    model = GPT2LMHeadModel(config).to(device).eval()
    pad, m = job["pad_id"], job["max_new_tokens"]

    def run(batch):
        ids, mask, width = left_padded(batch, pad)
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, do_sample=False, max_new_tokens=m,
                                 min_new_tokens=m, pad_token_id=pad, use_cache=True)
        return (out.shape[1] - width) * len(batch)

    prompts, b = job["prompts"], job["gen_batch"]
    run(prompts[:1])  # warm-up: the first call builds the generation config and caches
    t0 = time.perf_counter()
    single = sum(run([p]) for p in prompts)
    t1 = time.perf_counter()
    # sorted by length, as bench.ts batches them
    ordered = sorted(prompts, key=len)
    batched = sum(run(ordered[i:i + b]) for i in range(0, len(ordered), b))
    t2 = time.perf_counter()
    r = lambda x: float(f"{x:.4g}")
    return {
        "transformers": transformers.__version__,
        "hf_gen_tokens": single,
        "hf_gen_tokens_per_s": r(single / (t1 - t0)),
        "hf_gen_s": r(t1 - t0),
        "gen_batch": b,
        "hf_gen_batch_tokens": batched,
        "hf_gen_batch_tokens_per_s": r(batched / (t2 - t1)),
        "hf_gen_batch_s": r(t2 - t1),
    }


if __name__ == "__main__":
    main()
