"""Execute one notebook top to bottom with a Jupyter kernel (nbclient) and save the result.

Run by test/notebooks/run.ts with the course's own Python environment (.cache/python-env,
made by scripts/python-env.ts) or NOTEBOOK_PYTHON; the TypeScript side does the checking,
this file only executes.

usage: execute.py <in.ipynb> <out.ipynb> [--kernel tslab] [--timeout SECONDS]

Exit status: 0 when every cell ran, 1 when a cell raised (the notebook is saved up to and
including the failing cell, so its error output can be reported), 2 when the kernel could
not run the notebook at all (died, timed out, would not start).
"""
import argparse
import os
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("target")
    ap.add_argument("--kernel", default="tslab")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = ap.parse_args()

    nb = nbformat.read(args.source, as_version=4)
    # Start clean: a cell after a failure must not keep the outputs of an older run.
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)

    client = NotebookClient(
        nb,
        kernel_name=args.kernel,
        timeout=args.timeout,
        # The kernel runs in the notebook's own folder, as it does in Jupyter.
        resources={"metadata": {"path": os.path.dirname(os.path.abspath(args.source))}},
    )
    status = 0
    started = time.time()
    try:
        client.execute()
    except CellExecutionError:
        status = 1
    except Exception as e:  # kernel death, timeout, missing kernelspec
        print(f"execute.py: {os.path.basename(args.source)}: {type(e).__name__}: {e}", file=sys.stderr)
        status = 2
    nb.metadata["execution_seconds"] = round(time.time() - started, 1)
    nbformat.write(nb, args.target)
    return status


if __name__ == "__main__":
    sys.exit(main())
