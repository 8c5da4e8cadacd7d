"""Golden outputs of chapter 7's collate rule (section 7.3), for test/data-collate-golden.test.ts.

Run once with Debian's python3 (it has torch):  /usr/bin/python3 test/reference/collate_reference.py
It writes test/fixtures/collate-golden.json, using reference_model.py's collate_instruction_batch:
the book's rule re-written independently in PyTorch.
"""
import json
import os
import random

import torch

from reference_model import collate_instruction_batch


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
    inputs, targets = collate_instruction_batch(case["batch"], allowed_max_length=case["allowed_max_length"])
    case["inputs"] = inputs.tolist()
    case["targets"] = targets.tolist()

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "collate-golden.json")
with open(out, "w") as f:
    json.dump({"source": "test/reference/collate_reference.py (the chapter-7 collate rule, PyTorch " + torch.__version__ + ")", "cases": cases}, f)
print(f"wrote {len(cases)} cases to {out}")
