"""
PyTorch reference for LoRA (lib/model/lora.ts, exercise 7.4 / appendix E), for test/model-lora.test.ts.

    .cache/torch-venv/bin/python test/reference/lora_reference.py     (any Python with torch >= 2.0)

Writes test/fixtures/lora-golden.json. The base model is reference_model.py's ReferenceGPT with
gpt_reference.py's deterministic weights (the TypeScript side rebuilds them bit for bit); the LoRA
layers are written here on torch's own modules, from the description: a frozen linear layer plus
(alpha / rank) * x @ A @ B, A (in, rank) drawn by nn.init.kaiming_uniform_(a=sqrt(5)), B (rank, out)
zero, every linear layer wrapped (output head included), the base frozen with requires_grad_(False)
and only A and B handed to torch.optim.AdamW. A's drawn values are stored so both sides share them.

Recorded: logits with B = 0 (must equal the base model's), the loss and the gradients of every A and
B at B = 0 and at a non-zero B, the A and B after each of a few AdamW steps, and trainable counts
(a small config built here; gpt2-medium built on the meta device, so nothing is allocated).
"""
import json
import math
import os

import torch
import torch.nn as nn

from gpt_reference import deterministic_weights
from reference_model import ReferenceGPT, batch_loss

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "fixtures", "lora-golden.json")


class LoRALayer(nn.Module):
    def __init__(self, in_dim, out_dim, rank, alpha):
        super().__init__()
        self.A = nn.Parameter(torch.empty(in_dim, rank))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        self.B = nn.Parameter(torch.zeros(rank, out_dim))
        self.scale = alpha / rank

    def forward(self, x):
        return self.scale * (x @ self.A @ self.B)


class LoRAGPT(ReferenceGPT):
    """ReferenceGPT with a LoRA layer beside every linear layer (the head included), base frozen."""

    def add_lora(self, rank, alpha):
        for p in self.parameters():
            p.requires_grad_(False)
        names = [n[: -len(".weight")] for n, shape in self.named.items() if n.endswith(".weight") and n not in ("tokEmb.weight", "posEmb.weight")]
        self.lora = nn.ModuleDict()
        for n in names:
            w = self.named[n + ".weight"]
            self.lora[n.replace(".", "__")] = LoRALayer(w.shape[0], w.shape[1], rank, alpha)
        return names

    def _linear(self, x, prefix):
        y = super()._linear(x, prefix)
        lora = getattr(self, "lora", None)
        if lora is not None and prefix.replace(".", "__") in lora:
            y = y + lora[prefix.replace(".", "__")](x)
        return y


def lora_tensors(model):
    """Library names (`<layer>.lora.A`) -> the Parameter."""
    out = {}
    for key, layer in model.lora.items():
        out[key.replace("__", ".") + ".lora.A"] = layer.A
        out[key.replace("__", ".") + ".lora.B"] = layer.B
    return out


def flat(t):
    return [float(x) for x in t.detach().flatten().tolist()]


def main():
    cfg = {"vocabSize": 19, "contextLength": 8, "embDim": 8, "nHeads": 2, "nLayers": 2, "dropRate": 0.0, "qkvBias": True}
    rank, alpha = 2, 6.0
    lr, weight_decay, steps = 1e-2, 0.1, 3
    inputs = torch.tensor([[3, 7, 1, 18, 5, 0], [11, 2, 9, 4, 4, 16]])
    targets = torch.tensor([[7, 1, 18, 5, 0, 2], [2, 9, 4, 16, -100, -100]])

    torch.manual_seed(123)
    model = LoRAGPT(cfg)
    model.load_library_weights({k: torch.from_numpy(v) for k, v in deterministic_weights(cfg, tied_head=False).items()})
    model.eval()
    with torch.no_grad():
        base_logits = model(inputs)
    before = sum(p.numel() for p in model.parameters() if p.requires_grad)
    targets_names = model.add_lora(rank, alpha)
    tensors = lora_tensors(model)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    fan_bound = {n: math.sqrt(3.0) * nn.init.calculate_gain("leaky_relu", math.sqrt(5)) / math.sqrt(nn.init._calculate_correct_fan(t, "fan_in"))
                 for n, t in tensors.items() if n.endswith(".A")}

    def grads_at():
        model.zero_grad()
        loss = batch_loss(model, inputs, targets)
        loss.backward()
        frozen_with_grad = [n for n, p in model.named.items() if p.grad is not None]
        assert not frozen_with_grad, frozen_with_grad
        return float(loss.detach()), {n: flat(p.grad) for n, p in tensors.items()}

    with torch.no_grad():
        logits0 = model(inputs)
    loss0, grads0 = grads_at()
    initial = {n: flat(p) for n, p in tensors.items()}

    # a non-zero B: the gradient of A is no longer zero
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        b_values = {n: torch.randn(p.shape, generator=gen) * 0.3 for n, p in tensors.items() if n.endswith(".B")}
        for n, v in b_values.items():
            tensors[n].copy_(v)
        logits1 = model(inputs)
    loss1, grads1 = grads_at()
    with torch.no_grad():
        for n in b_values:
            tensors[n].zero_()

    # AdamW on A and B alone, from B = 0
    optimizer = torch.optim.AdamW(tensors.values(), lr=lr, weight_decay=weight_decay)
    trajectory = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = batch_loss(model, inputs, targets)
        loss.backward()
        optimizer.step()
        trajectory.append({"loss": float(loss.detach()), "after": {n: flat(p) for n, p in tensors.items()}})
    with torch.no_grad():
        final_loss = float(batch_loss(model, inputs, targets))
        merged_logits = model(inputs)

    # gpt2-medium: the book's 406,286,336 and 7,898,384, counted on the meta device
    medium = {"vocabSize": 50257, "contextLength": 1024, "embDim": 1024, "nHeads": 16, "nLayers": 24, "dropRate": 0.0, "qkvBias": True}
    with torch.device("meta"):
        big = LoRAGPT(medium)
        big_before = sum(p.numel() for p in big.parameters() if p.requires_grad)
        big.add_lora(16, 16)
        big_after_freeze_lora = sum(p.numel() for p in big.parameters() if p.requires_grad)

    out = {
        "torch": torch.__version__,
        "config": cfg, "rank": rank, "alpha": alpha, "lr": lr, "weightDecay": weight_decay,
        "inputs": inputs.tolist(), "targets": targets.tolist(),
        "targetLayers": targets_names,
        "shapes": {n: list(p.shape) for n, p in tensors.items()},
        "kaimingBound": fan_bound,
        "initial": initial,
        "baseLogits": flat(base_logits),
        "logits0": flat(logits0), "loss0": loss0, "grads0": grads0,
        "bNonZero": {n: flat(v) for n, v in b_values.items()},
        "logits1": flat(logits1), "loss1": loss1, "grads1": grads1,
        "steps": trajectory, "finalLoss": final_loss, "finalLogits": flat(merged_logits),
        "counts": {"smallBefore": before, "smallLoRA": trainable, "mediumBefore": big_before, "mediumLoRA": big_after_freeze_lora, "mediumRank": 16},
    }
    with open(FIXTURE, "w") as f:
        json.dump(out, f)
    print("wrote", os.path.normpath(FIXTURE), f"(torch {torch.__version__}; gpt2-medium: {big_before:,} -> {big_after_freeze_lora:,})")


if __name__ == "__main__":
    main()
