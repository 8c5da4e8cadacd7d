"""
PyTorch reference for the golden tests of the TypeScript GPT model (test/model-golden.test.ts).

Run with Debian's python (it has torch):  /usr/bin/python3 test/reference/gpt_reference.py
It writes test/fixtures/gpt-golden-*.json. Commit those; rerun only if the formula or cases change.

The model is reference_model.py's ReferenceGPT: GPT-2 as the book's chapter 4 describes it, written
independently of the TypeScript code on torch's own layers. Both sides fill the weights with the same deterministic
formula (see `deterministic_values` and test/helpers/deterministic-weights.ts), so no weight file
is committed: only the expected logits, losses, gradients and greedy tokens.
"""
import json
import math
import os

import numpy as np
import torch

from reference_model import IGNORE_INDEX, ReferenceGPT, greedy_tokens, param_shapes

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
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


def deterministic_values(name, shape, salt=""):
    """`salt` is hashed in front of the name: another, unrelated set of weights of the same shapes."""
    n = int(np.prod(shape))
    h = hash32(np.arange(n, dtype=np.uint64), fnv1a32(salt + name))
    v = h.astype(np.float64) / 4294967296.0 * 2.0 - 1.0
    offset, scale = offset_scale(name, shape)
    return (offset + scale * v).astype(np.float32).reshape(shape)


def deterministic_weights(cfg, tied_head, salt=""):
    w = {name: deterministic_values(name, shape, salt) for name, shape in param_shapes(cfg)}
    if tied_head:
        # GPT-2's checkpoints share the head with the token embedding
        w["outHead.weight"] = np.ascontiguousarray(w["tokEmb.weight"].T)
    return w


def build(cfg, tied_head, salt=""):
    """The reference model (reference_model.py) holding the deterministic weights, in eval mode."""
    model = ReferenceGPT(cfg)
    model.load_library_weights({k: torch.from_numpy(v) for k, v in deterministic_weights(cfg, tied_head, salt).items()})
    model.eval()
    return model


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
        g = model.p(name).grad.detach().contiguous().reshape(-1)
        out[name] = {"first": g[:48].tolist(), "norm": float(g.double().norm())}
    return out


def forward_loss(cfg, tied_head, inputs, targets):
    """The model on the formula's weights, its logits (B, T, V) on `inputs` and the masked loss on `targets`,
    backward already run: (model, logits, loss)."""
    torch.manual_seed(0)  # the weights are overwritten; this only fixes nn.Module's throwaway init
    model = build(cfg, tied_head)
    logits = model(torch.tensor(inputs))
    loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.tensor(targets).flatten(), ignore_index=IGNORE_INDEX)
    loss.backward()
    return model, logits, loss


def write_fixture(name, fixture):
    """test/fixtures/<name>, compact JSON and a final newline; returns its path."""
    path = os.path.join(FIXTURES, name)
    with open(path, "w") as f:
        json.dump(fixture, f, separators=(",", ":"))
        f.write("\n")
    return path


def case(name, cfg, tied_head, inputs, targets, prompt, new_tokens, vocab_slices, grad_names):
    model, logits, loss = forward_loss(cfg, tied_head, inputs, targets)
    x = torch.tensor(inputs)
    slices = [{"start": s, "values": logits[:, :, s:e].detach().tolist()} for s, e in vocab_slices]
    greedy = greedy_tokens(model, torch.tensor(prompt), new_tokens, cfg["contextLength"])
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
    path = write_fixture(f"gpt-golden-{name}.json", fixture)
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
