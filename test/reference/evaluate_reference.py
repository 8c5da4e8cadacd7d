"""PyTorch reference for `npm run evaluate` (test/cli-evaluate.test.ts), step 2.

Reads test/fixtures/evaluate-golden.json (written by test/reference/evaluate_inputs.ts: entries,
their token ids, a model config), builds the book's GPTModel with the deterministic weights of
gpt_reference.py, and adds `loss`: the book's calc_loss_loader over the entries in file order,
batches of `batchSize` (the last one short: no drop_last), collated with the book's
custom_collate_fn (pad 50256, ignore -100, allowed_max_length 1024). Run with Debian's python:

    /usr/bin/python3 test/reference/evaluate_reference.py
"""
import json
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from gpt_reference import build  # noqa: E402  (the book's model on the deterministic weights)

FIXTURE = os.path.join(HERE, "..", "fixtures", "evaluate-golden.json")


def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None):
    # the book's section 7.3, verbatim apart from the device
    batch_max_length = max(len(item) + 1 for item in batch)
    inputs_lst, targets_lst = [], []
    for item in batch:
        new_item = item.copy()
        new_item += [pad_token_id]
        padded = new_item + [pad_token_id] * (batch_max_length - len(new_item))
        inputs = torch.tensor(padded[:-1])
        targets = torch.tensor(padded[1:])
        mask = targets == pad_token_id
        indices = torch.nonzero(mask).squeeze()
        if indices.numel() > 1:
            targets[indices[1:]] = ignore_index
        if allowed_max_length is not None:
            inputs = inputs[:allowed_max_length]
            targets = targets[:allowed_max_length]
        inputs_lst.append(inputs)
        targets_lst.append(targets)
    return torch.stack(inputs_lst), torch.stack(targets_lst)


def calc_loss_batch(input_batch, target_batch, model):
    logits = model(input_batch)
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target_batch.flatten())


def calc_loss_loader(batches, model):
    total = 0.0
    for inputs, targets in batches:
        total += calc_loss_batch(inputs, targets, model).item()
    return total / len(batches)


def main():
    with open(FIXTURE) as f:
        fx = json.load(f)
    model = build(fx["config"], fx["tiedHead"])
    enc, bs = fx["encoded"], fx["batchSize"]
    batches = [custom_collate_fn(enc[i:i + bs], allowed_max_length=1024) for i in range(0, len(enc), bs)]
    with torch.no_grad():
        fx["loss"] = calc_loss_loader(batches, model)
    fx["torch"] = torch.__version__
    with open(FIXTURE, "w") as f:
        json.dump(fx, f)
        f.write("\n")
    print("loss", fx["loss"], "over", len(batches), "batches")


if __name__ == "__main__":
    main()
