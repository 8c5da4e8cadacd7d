"""PyTorch reference for `npm run evaluate` (test/cli-evaluate.test.ts), step 2.

Reads test/fixtures/evaluate-golden.json (written by test/reference/evaluate_inputs.ts: entries,
their token ids, a model config), builds the reference GPT (reference_model.py) with the deterministic weights
of gpt_reference.py, and adds `loss` with the book's definition of calc_loss_loader (the mean of the
batches' mean losses) over the entries in file order, batches of `batchSize` (the last one short: no
drop_last), collated by chapter 7's rule (pad 50256, ignore -100, allowed_max_length 1024). Run with Debian's python:

    /usr/bin/python3 test/reference/evaluate_reference.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpt_reference import build  # noqa: E402  (the reference model on the deterministic weights)
from reference_model import batch_loss, collate_instruction_batch  # noqa: E402

FIXTURE = os.path.join(HERE, "..", "fixtures", "evaluate-golden.json")


def calc_loss_loader(batches, model):
    total = 0.0
    for inputs, targets in batches:
        total += batch_loss(model, inputs, targets).item()
    return total / len(batches)


def main():
    with open(FIXTURE) as f:
        fx = json.load(f)
    model = build(fx["config"], fx["tiedHead"])
    enc, bs = fx["encoded"], fx["batchSize"]
    batches = [collate_instruction_batch(enc[i:i + bs], allowed_max_length=1024) for i in range(0, len(enc), bs)]
    with torch.no_grad():
        fx["loss"] = calc_loss_loader(batches, model)
    fx["torch"] = torch.__version__
    with open(FIXTURE, "w") as f:
        json.dump(fx, f)
        f.write("\n")
    print("loss", fx["loss"], "over", len(batches), "batches")


if __name__ == "__main__":
    main()
