"""
PyTorch reference for the GPT-2-small-sized parity test on the native engine
(test/native-gpt2-parity.test.ts): 124M weights, GPT-2's 50,257-token vocabulary and 1,024-token
context, 12 layers of 12 heads. The output head is its own matrix (the checkpoint's `lm_head.weight`): tied
to the formula's token embedding (values up to 1) the logits would be in the hundreds and the loss ~200,
where a 1e-3 tolerance says little; with its own head the loss is ~11, as for a fresh GPT-2.

Run with a recent torch (the venv .ci/run makes):  .cache/venv/bin/python test/reference/gpt2_small_reference.py
It writes test/fixtures/gpt2-small-golden.json: selected logits, log-sum-exps, the loss and
gradient norms and slices (not whole tensors: the weights are not committed either). Both sides
fill the weights with the deterministic formula of gpt_reference.py / test/helpers/deterministic-weights.ts;
the TypeScript test writes them as a Hugging Face checkpoint and loads that through the library's loader.
"""
import os

import torch

from gpt_reference import FORMULA_VERSION, forward_loss, write_fixture
from reference_model import END_OF_TEXT, IGNORE_INDEX

GPT2_SMALL = {"vocabSize": 50257, "contextLength": 1024, "embDim": 768, "nHeads": 12, "nLayers": 12,
              "dropRate": 0.0, "qkvBias": True}
T = 48
# token ids spread over the whole vocabulary; the second row padded like the collate function pads
INPUTS = [[(7919 * i + 13) % 50257 for i in range(T)], [(104729 * i + 5) % 50257 for i in range(T)]]
TARGETS = [row[1:] + [END_OF_TEXT] for row in INPUTS]
TARGETS[1][40:] = [IGNORE_INDEX] * (T - 40)
LOGIT_SLICES = [(0, 16), (50241, 50257)]
# (parameter, flat offset of a 16-value slice): the rows of tokens in the batch, first and last blocks
GRAD_SLICES = [
    ("tokEmb.weight", INPUTS[0][3] * 768),
    ("posEmb.weight", 5 * 768),
    ("blocks.0.att.wQuery.weight", 0),
    ("blocks.0.att.wValue.bias", 0),
    ("blocks.5.ff.fc1.weight", 1000),
    ("blocks.11.att.outProj.weight", 0),
    ("blocks.11.norm2.scale", 0),
    ("finalNorm.shift", 0),
    ("outHead.weight", 50000),
]


def main():
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    model, logits, loss = forward_loss(GPT2_SMALL, False, INPUTS, TARGETS)
    grads = {}
    for name, offset in GRAD_SLICES:
        g = model.p(name).grad.detach().contiguous().reshape(-1)
        grads[name] = {"offset": offset, "values": g[offset:offset + 16].tolist(), "norm": float(g.double().norm())}
    fixture = {
        "about": "expected outputs of test/reference/gpt2_small_reference.py (PyTorch %s) on deterministic weights" % torch.__version__,
        "formulaVersion": FORMULA_VERSION,
        "config": GPT2_SMALL,
        "inputs": INPUTS,
        "targets": TARGETS,
        "logitSlices": [{"start": s, "values": logits[:, :, s:e].detach().tolist()} for s, e in LOGIT_SLICES],
        "logsumexp": torch.logsumexp(logits, -1).tolist(),
        "argmax": logits.argmax(-1).tolist(),
        "loss": loss.item(),
        "grads": grads,
    }
    path = write_fixture("gpt2-small-golden.json", fixture)
    print(f"{path}: loss {fixture['loss']:.6f}")


if __name__ == "__main__":
    main()
