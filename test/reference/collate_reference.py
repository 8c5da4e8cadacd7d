"""Golden outputs of the book's `custom_collate_fn` (chapter 7, section 7.3), for
test/data-collate-golden.test.ts.

Run once with Debian's python3 (it has torch):  /usr/bin/python3 test/reference/collate_reference.py
It writes test/fixtures/collate-golden.json. The function below is the book's, unchanged
except that it returns lists instead of device tensors.
"""
import json
import os
import random

import torch


def custom_collate_fn(batch, pad_token_id=50256, ignore_index=-100, allowed_max_length=None, device="cpu"):
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
    inputs_tensor = torch.stack(inputs_lst).to(device)
    targets_tensor = torch.stack(targets_lst).to(device)
    return inputs_tensor, targets_tensor


rng = random.Random(0)
cases = [{"batch": [[0, 1, 2, 3, 4], [5, 6], [7, 8, 9]], "allowed_max_length": None}]
for n in range(12):
    size = rng.randint(1, 6)
    batch = [[rng.randrange(50257) for _ in range(rng.randint(1, 12))] for _ in range(size)]
    if n % 4 == 3:  # an item that already holds 50256: the book's mask is "== pad", so it shifts the quirk
        batch[0][rng.randrange(len(batch[0]))] = 50256
    limit = rng.choice([None, None, 1, 3, 8, 20])
    cases.append({"batch": batch, "allowed_max_length": limit})
cases.append({"batch": [[1, 2, 3], [4, 5, 6]], "allowed_max_length": None})  # equal lengths: only end-of-text, no padding

for case in cases:
    inputs, targets = custom_collate_fn(case["batch"], allowed_max_length=case["allowed_max_length"])
    case["inputs"] = inputs.tolist()
    case["targets"] = targets.tolist()

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "collate-golden.json")
with open(out, "w") as f:
    json.dump({"source": "test/reference/collate_reference.py (the book's custom_collate_fn, PyTorch " + torch.__version__ + ")", "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out}")
