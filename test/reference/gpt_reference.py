"""
PyTorch reference for the golden tests of the TypeScript GPT model (test/model-golden.test.ts).

Run with Debian's python (it has torch):  /usr/bin/python3 test/reference/gpt_reference.py
It writes test/fixtures/gpt-golden-*.json. Commit those; rerun only if the formula or cases change.

The model below is the book's chapter-4 GPTModel (nn.Linear layout, (out, in) weights), written
independently of the TypeScript code. Both sides fill the weights with the same deterministic
formula (see `deterministic_values` and test/helpers/deterministic-weights.ts), so no weight file
is committed: only the expected logits, losses, gradients and greedy tokens.
"""
import json
import math
import os

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
IGNORE_INDEX = -100
FORMULA_VERSION = 1

# ---------------------------------------------------------------- the deterministic weights
# value_k = float32(offset + scale * (2 * h(k) / 2**32 - 1)), k the row-major index in the
# library layout, h a 32-bit integer hash of (k, FNV-1a of the parameter's library name).
# Integer arithmetic only until the last two float64 operations, so JS and numpy agree bit for bit.

M32 = 0xFFFFFFFF


def fnv1a32(name):
    h = 0x811C9DC5
    for ch in name.encode("ascii"):
        h ^= ch
        h = (h * 0x01000193) & M32
    return h


def hash32(k, seed):
    # k: uint32 array; lowbias32 (Chris Wellons) of k * golden + seed, all mod 2**32
    x = (k.astype(np.uint64) * 0x9E3779B1 + seed) & M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def offset_scale(name, shape):
    if name.endswith(".scale"):
        return 1.0, 0.2
    if name.endswith(".shift") or name.endswith(".bias"):
        return 0.0, 0.1
    if name == "tokEmb.weight":
        return 0.0, 1.0
    if name == "posEmb.weight":
        return 0.0, 0.5
    if name == "outHead.weight":
        return 0.0, 3.0 / math.sqrt(shape[0])
    return 0.0, 1.0 / math.sqrt(shape[0])  # a (in, out) matrix


def deterministic_values(name, shape):
    n = int(np.prod(shape))
    h = hash32(np.arange(n, dtype=np.uint64), fnv1a32(name))
    v = h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0
    offset, scale = offset_scale(name, shape)
    return (offset + scale * v).astype(np.float32).reshape(shape)


def library_param_shapes(cfg):
    """Library names and (in, out) shapes, in the order GPTModel registers them."""
    V, T, C = cfg["vocabSize"], cfg["contextLength"], cfg["embDim"]
    shapes = [("tokEmb.weight", [V, C]), ("posEmb.weight", [T, C])]
    for i in range(cfg["nLayers"]):
        p = f"blocks.{i}."
        shapes += [(p + "norm1.scale", [C]), (p + "norm1.shift", [C])]
        for w in ("wQuery", "wKey", "wValue"):
            shapes.append((p + f"att.{w}.weight", [C, C]))
            if cfg["qkvBias"]:
                shapes.append((p + f"att.{w}.bias", [C]))
        shapes += [(p + "att.outProj.weight", [C, C]), (p + "att.outProj.bias", [C])]
        shapes += [(p + "norm2.scale", [C]), (p + "norm2.shift", [C])]
        shapes += [(p + "ff.fc1.weight", [C, 4 * C]), (p + "ff.fc1.bias", [4 * C])]
        shapes += [(p + "ff.fc2.weight", [4 * C, C]), (p + "ff.fc2.bias", [C])]
    shapes += [("finalNorm.scale", [C]), ("finalNorm.shift", [C]), ("outHead.weight", [C, V])]
    return shapes


def deterministic_weights(cfg, tied_head):
    w = {name: deterministic_values(name, shape) for name, shape in library_param_shapes(cfg)}
    if tied_head:
        # GPT-2's checkpoints share the head with the token embedding
        w["outHead.weight"] = np.ascontiguousarray(w["tokEmb.weight"].T)
    return w


# ---------------------------------------------------------------- the book's model (chapter 4)
class MultiHeadAttention(nn.Module):
    def __init__(self, d_in, d_out, context_length, dropout, num_heads, qkv_bias=False):
        super().__init__()
        self.d_out, self.num_heads, self.head_dim = d_out, num_heads, d_out // num_heads
        self.W_query = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_key = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.W_value = nn.Linear(d_in, d_out, bias=qkv_bias)
        self.out_proj = nn.Linear(d_out, d_out)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("mask", torch.triu(torch.ones(context_length, context_length), diagonal=1))

    def forward(self, x):
        b, num_tokens, _ = x.shape
        keys = self.W_key(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        queries = self.W_query(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        values = self.W_value(x).view(b, num_tokens, self.num_heads, self.head_dim).transpose(1, 2)
        attn_scores = queries @ keys.transpose(2, 3)
        attn_scores.masked_fill_(self.mask.bool()[:num_tokens, :num_tokens], -torch.inf)
        attn_weights = torch.softmax(attn_scores / keys.shape[-1] ** 0.5, dim=-1)
        attn_weights = self.dropout(attn_weights)
        context_vec = (attn_weights @ values).transpose(1, 2).contiguous().view(b, num_tokens, self.d_out)
        return self.out_proj(context_vec)


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


class FeedForward(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(cfg["emb_dim"], 4 * cfg["emb_dim"]), GELU(), nn.Linear(4 * cfg["emb_dim"], cfg["emb_dim"]))

    def forward(self, x):
        return self.layers(x)


class TransformerBlock(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.att = MultiHeadAttention(cfg["emb_dim"], cfg["emb_dim"], cfg["context_length"], cfg["drop_rate"],
                                      cfg["n_heads"], cfg["qkv_bias"])
        self.ff = FeedForward(cfg)
        self.norm1 = LayerNorm(cfg["emb_dim"])
        self.norm2 = LayerNorm(cfg["emb_dim"])
        self.drop_shortcut = nn.Dropout(cfg["drop_rate"])

    def forward(self, x):
        x = x + self.drop_shortcut(self.att(self.norm1(x)))
        return x + self.drop_shortcut(self.ff(self.norm2(x)))


class GPTModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.tok_emb = nn.Embedding(cfg["vocab_size"], cfg["emb_dim"])
        self.pos_emb = nn.Embedding(cfg["context_length"], cfg["emb_dim"])
        self.drop_emb = nn.Dropout(cfg["drop_rate"])
        self.trf_blocks = nn.Sequential(*[TransformerBlock(cfg) for _ in range(cfg["n_layers"])])
        self.final_norm = LayerNorm(cfg["emb_dim"])
        self.out_head = nn.Linear(cfg["emb_dim"], cfg["vocab_size"], bias=False)

    def forward(self, in_idx):
        _, seq_len = in_idx.shape
        x = self.tok_emb(in_idx) + self.pos_emb(torch.arange(seq_len, device=in_idx.device))
        x = self.trf_blocks(self.drop_emb(x))
        return self.out_head(self.final_norm(x))


def torch_param(model, name):
    """The torch parameter behind a library name, and whether it is stored transposed ((out, in))."""
    if name == "tokEmb.weight":
        return model.tok_emb.weight, False
    if name == "posEmb.weight":
        return model.pos_emb.weight, False
    if name == "outHead.weight":
        return model.out_head.weight, True
    if name.startswith("finalNorm."):
        return getattr(model.final_norm, name.split(".")[1]), False
    _, i, *rest = name.split(".")
    block = model.trf_blocks[int(i)]
    if rest[0] in ("norm1", "norm2"):
        return getattr(getattr(block, rest[0]), rest[1]), False
    if rest[0] == "att":
        torch_name = {"wQuery": "W_query", "wKey": "W_key", "wValue": "W_value", "outProj": "out_proj"}[rest[1]]
        return getattr(getattr(block.att, torch_name), rest[2]), rest[2] == "weight"
    layer = block.ff.layers[{"fc1": 0, "fc2": 2}[rest[1]]]
    return getattr(layer, rest[2]), rest[2] == "weight"


def build(cfg, tied_head):
    torch_cfg = {"vocab_size": cfg["vocabSize"], "context_length": cfg["contextLength"], "emb_dim": cfg["embDim"],
                 "n_heads": cfg["nHeads"], "n_layers": cfg["nLayers"], "drop_rate": cfg["dropRate"],
                 "qkv_bias": cfg["qkvBias"]}
    model = GPTModel(torch_cfg)
    with torch.no_grad():
        for name, value in deterministic_weights(cfg, tied_head).items():
            p, transposed = torch_param(model, name)
            t = torch.from_numpy(value.T.copy() if transposed else value)
            assert p.shape == t.shape, (name, p.shape, t.shape)
            p.copy_(t)
    model.eval()
    return model


def generate_greedy(model, idx, max_new_tokens, context_size):
    """The book's generate_text_simple."""
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return idx


def top2_gap(model, idx, max_new_tokens, context_size):
    """Smallest margin between the best and second-best logit along the greedy path (argmax robustness)."""
    gap = float("inf")
    for _ in range(max_new_tokens):
        with torch.no_grad():
            logits = model(idx[:, -context_size:])[:, -1, :]
        top = torch.topk(logits, 2, dim=-1).values
        gap = min(gap, float((top[:, 0] - top[:, 1]).min()))
        idx = torch.cat((idx, torch.argmax(logits, dim=-1, keepdim=True)), dim=1)
    return gap


def grads_summary(model, names):
    out = {}
    for name in names:
        p, transposed = torch_param(model, name)
        g = p.grad.detach()
        g = (g.T if transposed else g).contiguous().reshape(-1)
        out[name] = {"first": g[:48].tolist(), "norm": float(g.double().norm())}
    return out


def case(name, cfg, tied_head, inputs, targets, prompt, new_tokens, vocab_slices, grad_names):
    torch.manual_seed(0)  # the weights are overwritten; this only fixes nn.Module's throwaway init
    model = build(cfg, tied_head)
    x = torch.tensor(inputs)
    y = torch.tensor(targets)
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX)
    loss.backward()
    slices = [{"start": s, "values": logits[:, :, s:e].detach().tolist()} for s, e in vocab_slices]
    greedy = generate_greedy(model, torch.tensor(prompt), new_tokens, cfg["contextLength"])
    fixture = {
        "about": "expected outputs of test/reference/gpt_reference.py (PyTorch %s) on deterministic weights" % torch.__version__,
        "formulaVersion": FORMULA_VERSION,
        "config": cfg,
        "tiedHead": tied_head,
        "inputs": inputs,
        "targets": targets,
        "logitSlices": slices,
        "argmax": logits.argmax(-1).tolist(),
        "logsumexp": torch.logsumexp(logits, -1).tolist(),
        "loss": float(loss),
        "lossAllKept": float(torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), x.roll(-1, 1).flatten())),
        "grads": grads_summary(model, grad_names),
        "prompt": prompt,
        "greedy": greedy.tolist(),
        "greedyMinTop2Gap": top2_gap(model, torch.tensor(prompt), new_tokens, cfg["contextLength"]),
    }
    path = os.path.join(FIXTURES, f"gpt-golden-{name}.json")
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    print(f"{path}: loss {fixture['loss']:.6f}, greedy {fixture['greedy']}, min top-2 gap {fixture['greedyMinTop2Gap']:.4f}")


def main():
    os.makedirs(FIXTURES, exist_ok=True)
    small = {"vocabSize": 64, "contextLength": 16, "embDim": 16, "nHeads": 2, "nLayers": 2, "dropRate": 0.0,
             "qkvBias": True}
    ids = [[(7 * i + 3) % 64 for i in range(10)], [(11 * i + 5) % 64 for i in range(10)]]
    targets = [row[1:] + [0] for row in ids]
    targets[0][7:] = [IGNORE_INDEX] * 3  # padding, as the collate function writes it
    targets[1][9] = IGNORE_INDEX
    grad_names = ["tokEmb.weight", "posEmb.weight", "blocks.0.att.wQuery.weight", "blocks.0.att.wValue.bias",
                  "blocks.1.ff.fc1.weight", "blocks.1.norm2.scale", "finalNorm.shift", "outHead.weight"]
    # 20 new tokens from 3 overflow the 16-token context, so the crop is exercised
    case("small", small, False, ids, targets, [[3, 7, 11], [60, 2, 33]], 20,
         [(0, 64)], grad_names)

    vocab = {"vocabSize": 50257, "contextLength": 64, "embDim": 16, "nHeads": 2, "nLayers": 2, "dropRate": 0.0,
             "qkvBias": True}
    # the book's chapter-4 batch, "Every effort moves you" / "Every day holds a", as GPT-2 token ids
    ids = [[6109, 3626, 6100, 345], [6109, 1110, 6622, 257]]
    targets = [[3626, 6100, 345, 50256], [1110, 6622, IGNORE_INDEX, IGNORE_INDEX]]
    # "Hello, I am" as in the book's generate_text_simple demo
    case("vocab", vocab, True, ids, targets, [[15496, 11, 314, 716]], 10,
         [(0, 32), (50225, 50257)], grad_names[:1] + ["blocks.1.att.outProj.weight", "finalNorm.scale"])


if __name__ == "__main__":
    main()
