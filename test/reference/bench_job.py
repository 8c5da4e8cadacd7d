"""The bench's job files (lib/cli/bench-torch.ts writes them): `script JOB.json [--threads N]`."""
import argparse
import json

import torch


def read_job():
    """The job's JSON, with torch's thread count set from --threads when given."""
    parser = argparse.ArgumentParser()
    parser.add_argument("job")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    with open(args.job) as f:
        job = json.load(f)
    if args.threads:
        torch.set_num_threads(args.threads)
    return job


def left_padded(batch, pad):
    """Token id rows of different lengths as one batch for transformers' generate: (ids, attention mask, width).
    Left padding puts every row's newest token in the last column; the mask hides the padding."""
    width = max(len(p) for p in batch)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in batch])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch])
    return ids, mask, width
