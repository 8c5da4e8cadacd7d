"""PyTorch reference for lib/train/adamw.ts.

Runs torch.optim.AdamW for a few steps on two small tensors with fixed gradients
(a different gradient each step) and writes the parameters after every step to
test/fixtures/adamw_reference.json. Run with Debian's python (torch 1.13):

    /usr/bin/python3 test/reference/adamw_reference.py
"""
import json
import os

import torch

torch.manual_seed(0)
params = {
    "w": torch.randn(3, 4, dtype=torch.float32),
    "b": torch.randn(4, dtype=torch.float32),
}
steps = 4
# fixed gradients, one set per step, with mixed signs and scales
grads = [
    {name: (torch.randn_like(p) * (0.1 if s % 2 else 2.0)) for name, p in params.items()}
    for s in range(steps)
]

cases = []
for opts in [
    {"lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1},  # the book's decay, a big lr to see it
    {"lr": 5e-5, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.1},  # the book's settings
    {"lr": 0.1, "betas": [0.8, 0.99], "eps": 1e-3, "weight_decay": 0.0},    # no decay, other betas and eps
]:
    tensors = {name: torch.nn.Parameter(p.clone()) for name, p in params.items()}
    opt = torch.optim.AdamW(tensors.values(), lr=opts["lr"], betas=tuple(opts["betas"]),
                            eps=opts["eps"], weight_decay=opts["weight_decay"])
    after = []
    for s in range(steps):
        opt.zero_grad()
        for name, p in tensors.items():
            p.grad = grads[s][name].clone()
        opt.step()
        after.append({name: p.detach().flatten().tolist() for name, p in tensors.items()})
    cases.append({"options": opts, "after": after})

out = {
    "torch": torch.__version__,
    "shapes": {name: list(p.shape) for name, p in params.items()},
    "initial": {name: p.flatten().tolist() for name, p in params.items()},
    "grads": [{name: g.flatten().tolist() for name, g in step.items()} for step in grads],
    "cases": cases,
}
path = os.path.join(os.path.dirname(__file__), "..", "fixtures", "adamw_reference.json")
with open(path, "w") as f:
    json.dump(out, f)
print("wrote", os.path.normpath(path))
