"""
The PyTorch side of the golden tests and of the benchmark: GPT-2 as chapter 4 of the book describes
it, and the chapter-7 collate rule, written here from the description (not from the book's code) and
on torch's own building blocks (F.layer_norm, F.gelu(approximate="tanh"), F.cross_entropy), so that
it checks the TypeScript code rather than mirrors it.

Parameters are stored under the TypeScript library's names and in its layout ((in, out) matrices,
y = x @ W + b), so a fixture can name a tensor the same way on both sides and no transposes are
needed to move weights across.

Imported by gpt_reference.py, evaluate_reference.py, collate_reference.py, lora_reference.py and torch_bench.py.
Run them with Debian's python3, which has torch (1.13).
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

IGNORE_INDEX = -100
END_OF_TEXT = 50256
LAYERNORM_EPS = 1e-5


def param_shapes(cfg):
    """Library names and shapes, in the order the TypeScript GPTModel registers them."""
    V, T, C = cfg["vocabSize"], cfg["contextLength"], cfg["embDim"]
    shapes = [("tokEmb.weight", [V, C]), ("posEmb.weight", [T, C])]
    for i in range(cfg["nLayers"]):
        b = f"blocks.{i}."
        shapes += [(b + "norm1.scale", [C]), (b + "norm1.shift", [C])]
        for proj in ("wQuery", "wKey", "wValue"):
            shapes.append((b + f"att.{proj}.weight", [C, C]))
            if cfg["qkvBias"]:
                shapes.append((b + f"att.{proj}.bias", [C]))
        shapes += [(b + "att.outProj.weight", [C, C]), (b + "att.outProj.bias", [C])]
        shapes += [(b + "norm2.scale", [C]), (b + "norm2.shift", [C])]
        shapes += [(b + "ff.fc1.weight", [C, 4 * C]), (b + "ff.fc1.bias", [4 * C])]
        shapes += [(b + "ff.fc2.weight", [4 * C, C]), (b + "ff.fc2.bias", [C])]
    shapes += [("finalNorm.scale", [C]), ("finalNorm.shift", [C]), ("outHead.weight", [C, V])]
    return shapes


class ReferenceGPT(nn.Module):
    """GPT-2 forward pass (pre-LayerNorm blocks, causal multi-head attention, tanh-GELU MLP)."""

    def __init__(self, cfg, init_std=0.02):
        super().__init__()
        self.cfg = cfg
        self.named = {}
        for name, shape in param_shapes(cfg):
            if name.endswith(".scale"):
                value = torch.ones(shape)
            elif name.endswith(".shift") or name.endswith(".bias"):
                value = torch.zeros(shape)
            else:
                value = torch.randn(shape) * init_std
            p = nn.Parameter(value)
            self.register_parameter(name.replace(".", "__"), p)
            self.named[name] = p
        self.drop = nn.Dropout(cfg["dropRate"])

    def p(self, name):
        return self.named[name]

    def load_library_weights(self, weights):
        with torch.no_grad():
            for name, value in weights.items():
                target = self.named[name]
                t = torch.as_tensor(value)
                assert tuple(target.shape) == tuple(t.shape), (name, target.shape, t.shape)
                target.copy_(t)

    def _norm(self, x, prefix):
        return F.layer_norm(x, x.shape[-1:], self.p(prefix + ".scale"), self.p(prefix + ".shift"), LAYERNORM_EPS)

    def _linear(self, x, prefix):
        y = x @ self.p(prefix + ".weight")
        bias = self.named.get(prefix + ".bias")
        return y if bias is None else y + bias

    def _attention(self, x, prefix):
        B, T, C = x.shape
        H = self.cfg["nHeads"]
        D = C // H

        def heads(t):  # (B, T, C) -> (B, H, T, D)
            return t.reshape(B, T, H, D).permute(0, 2, 1, 3)

        q = heads(self._linear(x, prefix + ".wQuery"))
        k = heads(self._linear(x, prefix + ".wKey"))
        v = heads(self._linear(x, prefix + ".wValue"))
        scores = torch.einsum("bhqd,bhkd->bhqk", q, k) / math.sqrt(D)  # (B, H, T, T)
        future = torch.ones(T, T, dtype=torch.bool).triu(1)
        attn = self.drop(torch.softmax(scores.masked_fill(future, float("-inf")), dim=-1))
        out = torch.einsum("bhqk,bhkd->bhqd", attn, v).permute(0, 2, 1, 3).reshape(B, T, C)
        return self._linear(out, prefix + ".outProj")

    def forward(self, idx):
        _, T = idx.shape
        x = self.p("tokEmb.weight")[idx] + self.p("posEmb.weight")[:T]  # (B, T, C)
        x = self.drop(x)
        for i in range(self.cfg["nLayers"]):
            b = f"blocks.{i}"
            x = x + self.drop(self._attention(self._norm(x, b + ".norm1"), b + ".att"))
            h = F.gelu(self._linear(self._norm(x, b + ".norm2"), b + ".ff.fc1"), approximate="tanh")
            x = x + self.drop(self._linear(h, b + ".ff.fc2"))
        return self._linear(self._norm(x, "finalNorm"), "outHead")  # (B, T, C) @ (C, V) -> (B, T, V), no bias


def batch_loss(model, inputs, targets):
    """Mean cross-entropy over the target positions that are not IGNORE_INDEX."""
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def greedy_tokens(model, idx, max_new_tokens, context_size, eos_id=None):
    """Argmax decoding with the context cropped to its last context_size tokens."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            nxt = model(idx[:, -context_size:])[:, -1].argmax(-1, keepdim=True)
        if eos_id is not None and idx.shape[0] == 1 and int(nxt) == eos_id:
            break
        idx = torch.cat([idx, nxt], dim=1)
    return idx


def collate_instruction_batch(batch, pad_token_id=END_OF_TEXT, ignore_index=IGNORE_INDEX, allowed_max_length=None):
    """Chapter 7's rule: every sequence gets one end-of-text and is padded to the longest + 1;
    inputs drop the last position, targets the first; in the targets every pad token after the
    first one at or past the sequence's end is ignored (an end-of-text inside the sequence counts
    as a pad token too, as in the book); then both are cut to allowed_max_length."""
    width = 1 + max(len(seq) for seq in batch)
    inputs, targets = [], []
    for seq in batch:
        row = list(seq) + [pad_token_id] * (width - len(seq))
        x, y = row[:-1], row[1:]
        pads = [i for i, t in enumerate(y) if t == pad_token_id]
        for i in pads[1:]:
            y[i] = ignore_index
        inputs.append(x[:allowed_max_length] if allowed_max_length is not None else x)
        targets.append(y[:allowed_max_length] if allowed_max_length is not None else y)
    return torch.tensor(inputs), torch.tensor(targets)
