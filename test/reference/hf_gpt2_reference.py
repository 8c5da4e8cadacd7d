"""
PyTorch reference for the Hugging Face GPT-2 loader (lib/weights/gpt2-directory.ts), for
test/weights-golden.test.ts.

Run with Debian's python (it has torch):  /usr/bin/python3 test/reference/hf_gpt2_reference.py
It writes test/fixtures/hf-gpt2-tiny/{config.json, model.safetensors} and
test/fixtures/hf-gpt2-tiny-golden.json. Commit them; rerun only if the cases change.

The checkpoint is in the layout transformers' `GPT2LMHeadModel.save_pretrained` writes:
names under "transformer.", Conv1D weights (in, out), a fused `c_attn` (C, 3C) holding
query | key | value, the causal-mask buffers `attn.bias` / `attn.masked_bias`, and no
`lm_head.weight` (the head is tied to `wte`). The forward pass below follows transformers'
`modeling_gpt2.py` on those tensors directly, written without the TypeScript code's name
map, so a wrong split, a wrong transpose or a swapped name in the loader changes the logits.
The safetensors file is written here by hand (struct + json), not by the library's writer.
"""
import json
import math
import os
import struct

import torch

from gpt_reference import write_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fixtures")
OUT_DIR = os.path.join(FIXTURES, "hf-gpt2-tiny")
CONFIG = {"model_type": "gpt2", "vocab_size": 64, "n_positions": 16, "n_ctx": 16, "n_embd": 16,
          "n_layer": 2, "n_head": 4, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}


def make_tensors(cfg):
    g = torch.Generator().manual_seed(1234)
    V, T, C = cfg["vocab_size"], cfg["n_positions"], cfg["n_embd"]

    def rand(*shape, std=1.0, mean=0.0):
        return (mean + std * torch.randn(*shape, generator=g)).float()

    t = {"transformer.wte.weight": rand(V, C), "transformer.wpe.weight": rand(T, C, std=0.5)}
    for i in range(cfg["n_layer"]):
        h = f"transformer.h.{i}."
        t[h + "ln_1.weight"] = rand(C, std=0.2, mean=1.0)
        t[h + "ln_1.bias"] = rand(C, std=0.1)
        t[h + "attn.c_attn.weight"] = rand(C, 3 * C, std=1 / math.sqrt(C))
        t[h + "attn.c_attn.bias"] = rand(3 * C, std=0.1)
        t[h + "attn.c_proj.weight"] = rand(C, C, std=1 / math.sqrt(C))
        t[h + "attn.c_proj.bias"] = rand(C, std=0.1)
        t[h + "ln_2.weight"] = rand(C, std=0.2, mean=1.0)
        t[h + "ln_2.bias"] = rand(C, std=0.1)
        t[h + "mlp.c_fc.weight"] = rand(C, 4 * C, std=1 / math.sqrt(C))
        t[h + "mlp.c_fc.bias"] = rand(4 * C, std=0.1)
        t[h + "mlp.c_proj.weight"] = rand(4 * C, C, std=1 / math.sqrt(4 * C))
        t[h + "mlp.c_proj.bias"] = rand(C, std=0.1)
        # buffers older transformers versions saved; the loader must skip them
        t[h + "attn.bias"] = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
        t[h + "attn.masked_bias"] = torch.tensor(-1e4)
    t["transformer.ln_f.weight"] = rand(C, std=0.2, mean=1.0)
    t["transformer.ln_f.bias"] = rand(C, std=0.1)
    return t


def forward(t, cfg, ids):
    """transformers' GPT2LMHeadModel.forward (eval mode), in float64 on the float32 weights."""
    p = {k: v.double() for k, v in t.items()}
    C, H = cfg["n_embd"], cfg["n_head"]
    B, T = ids.shape

    def conv1d(x, name):  # transformers.pytorch_utils.Conv1D: x @ W + b with W stored (in, out)
        return x @ p[name + ".weight"] + p[name + ".bias"]

    def ln(x, name):
        return torch.nn.functional.layer_norm(x, (C,), p[name + ".weight"], p[name + ".bias"], eps=1e-5)

    def gelu_new(x):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))

    def heads(x):  # (B, T, C) -> (B, H, T, C/H)
        return x.view(B, T, H, C // H).permute(0, 2, 1, 3)

    x = p["transformer.wte.weight"][ids] + p["transformer.wpe.weight"][torch.arange(T)]
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(cfg["n_layer"]):
        h = f"transformer.h.{i}."
        q, k, v = conv1d(ln(x, h + "ln_1"), h + "attn.c_attn").split(C, dim=2)
        scores = heads(q) @ heads(k).transpose(-1, -2) / math.sqrt(C // H)
        scores = scores.masked_fill(~causal, float("-inf"))
        a = (torch.softmax(scores, dim=-1) @ heads(v)).permute(0, 2, 1, 3).reshape(B, T, C)
        x = x + conv1d(a, h + "attn.c_proj")
        x = x + conv1d(gelu_new(conv1d(ln(x, h + "ln_2"), h + "mlp.c_fc")), h + "mlp.c_proj")
    x = ln(x, "transformer.ln_f")
    return x @ p["transformer.wte.weight"].T  # the head tied to wte: (B, T, C) @ (C, V)


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": metadata}
    offset, blobs = 0, []
    for name, value in tensors.items():
        data = value.contiguous().numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(value.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    head = json.dumps(header).encode("utf8")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    t = make_tensors(CONFIG)
    with open(os.path.join(OUT_DIR, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(OUT_DIR, "model.safetensors"), t, {"format": "pt"})

    ids = torch.tensor([[(5 * i + 1) % 64 for i in range(12)], [(13 * i + 7) % 64 for i in range(12)]])
    logits = forward(t, CONFIG, ids)
    golden = {
        "about": "test/reference/hf_gpt2_reference.py: transformers' GPT-2 forward pass on "
                 "test/fixtures/hf-gpt2-tiny (PyTorch %s, float64)" % torch.__version__,
        "inputs": ids.tolist(),
        "logits": logits.tolist(),
        "argmax": logits.argmax(-1).tolist(),
    }
    path = write_fixture("hf-gpt2-tiny-golden.json", golden)
    print(f"wrote {OUT_DIR} and {path}")


if __name__ == "__main__":
    main()
