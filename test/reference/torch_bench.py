"""PyTorch reference benchmark for `npm run bench -- --vs-torch` (lib/cli/bench.ts).

Run by the TypeScript side with Debian's python3 (it has torch 1.13):

    /usr/bin/python3 test/reference/torch_bench.py JOB.json [--threads N]

JOB.json (written by bench.ts) holds the model config, the seed, AdamW's settings, the very
token batches the TypeScript run trained on (inputs and targets, -100 where ignored) and the
prompts' token ids. This script trains the book's GPTModel (chapter 4, written out below) on
those batches with the book's `calc_loss_batch` and `torch.optim.AdamW`, then generates with
the book's `generate` (greedy, no KV cache, stops at <|endoftext|>), and prints one JSON line
with the same fields as bench.ts: step_s (median), train_tokens_per_s (padded),
real_tokens_per_s, gen_tokens_per_s, peak_rss_mib. Progress goes to stderr.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch
import torch.nn as nn


class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        assert d_out % num_heads == 0
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, t, _ = x.shape
        # (B, T, C) -> (B, nHeads, T, headDim)
        q = self.W_query(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        k = self.W_key(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.W_value(x).view(b, t, self.num_heads, self.head_dim).transpose(1, 2)
        scores = q @ k.transpose(2, 3)  # (B, nHeads, T, T)
        scores.masked_fill_(self.mask.bool()[:t, :t], -torch.inf)
        weights = self.dropout(torch.softmax(scores / k.shape[-1] ** 0.5, dim=-1))
        ctx = (weights @ v).transpose(1, 2).contiguous().view(b, t, self.d_out)  # (B, T, C)
        return self.out_proj(ctx)


class LayerNorm(nn.Module):
    def __init__(self, emb_dim):
        super().__init__()
        self.eps = 1e-5
        self.scale = nn.Parameter(torch.ones(emb_dim))
        self.shift = nn.Parameter(torch.zeros(emb_dim))

    def forward(self, x):
        mean = x.mean(dim=-1, keepdim=True)
        var = x.var(dim=-1, keepdim=True, unbiased=False)
        return self.scale * (x - mean) / torch.sqrt(var + self.eps) + self.shift


class GELU(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1 + torch.tanh(torch.sqrt(torch.tensor(2.0 / torch.pi)) * (x + 0.044715 * torch.pow(x, 3))))


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg["embDim"]
        self.att = MultiHeadAttention(c, c, cfg["contextLength"], cfg["dropRate"], cfg["nHeads"], cfg["qkvBias"])
        self.ff = nn.Sequential(nn.Linear(c, 4 * c), GELU(), nn.Linear(4 * c, c))
        self.norm1, self.norm2 = LayerNorm(c), LayerNorm(c)
        self.drop_shortcut = nn.Dropout(cfg["dropRate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocabSize"], cfg["embDim"])
        self.pos_emb = nn.Embedding(cfg["contextLength"], cfg["embDim"])
        self.drop_emb = nn.Dropout(cfg["dropRate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["nLayers"])])
        self.final_norm = LayerNorm(cfg["embDim"])
        self.out_head = nn.Linear(cfg["embDim"], cfg["vocabSize"], bias=False)

    def forward(self, idx):
        _, t = idx.shape
        x = self.drop_emb(self.tok_emb(idx) + self.pos_emb(torch.arange(t, device=idx.device)))
        return self.out_head(self.final_norm(self.trf_blocks(x)))  # (B, T, V)


def calc_loss_batch(inputs, targets, model):
    logits = model(inputs)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), targets.flatten())  # ignore_index=-100


def generate(model, idx, max_new_tokens, context_size, eos_id):
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx_next = torch.argmax(logits, dim=-1, keepdim=True)
        if idx_next.item() == eos_id:
            break
        idx = torch.cat((idx, idx_next), dim=1)
    return idx


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = job["config"]
    torch.manual_seed(job["seed"])
    model = GPTModel(cfg)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=job["lr"], weight_decay=job["weight_decay"])

    times, padded, real = [], 0, 0
    for i, batch in enumerate(job["batches"]):
        t0 = time.perf_counter()
        inputs = torch.tensor(batch["inputs"], dtype=torch.long)
        targets = torch.tensor(batch["targets"], dtype=torch.long)
        optimizer.zero_grad()
        loss = calc_loss_batch(inputs, targets, model)
        loss.backward()
        optimizer.step()
        value = loss.item()
        dt = time.perf_counter() - t0
        times.append(dt)
        padded += inputs.numel()
        real += int((targets != -100).sum())
        print(f"torch step {i + 1}/{len(job['batches'])}: {tuple(inputs.shape)} loss {value:.3f} in {dt:.2f} s", file=sys.stderr)
    train_seconds = sum(times)

    model.eval()
    gen_tokens, g0 = 0, time.perf_counter()
    for ids in job["prompts"]:
        out = generate(model, torch.tensor([ids]), job["max_new_tokens"], cfg["contextLength"], job["eos_id"])
        gen_tokens += out.shape[1] - len(ids)
    gen_seconds = time.perf_counter() - g0

    r = lambda x: float(f"{x:.4g}")
    print(json.dumps({
        "impl": "torch",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "steps": len(times),
        "step_s": r(statistics.median(times)),
        "train_tokens_per_s": r(padded / train_seconds),
        "real_tokens_per_s": r(real / train_seconds),
        "gen_tokens": gen_tokens,
        "gen_tokens_per_s": r(gen_tokens / gen_seconds) if job["prompts"] else None,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }))


if __name__ == "__main__":
    main()
