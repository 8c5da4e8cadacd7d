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
