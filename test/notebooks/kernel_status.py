"""Does the kernel say "busy" for as long as any queued cell runs? (scripts/tslab-kernel.js)

Queues two cells that await (as the training loop does) and records the kernel's status
messages. tslab alone reports "idle" when the first cell ends although the second still
runs, so Jupyter showed "Idle" through a whole training cell during Run All.

usage: kernel_status.py <kernel argv...>      (run by test/notebooks/run.ts)
Prints the status sequence; exit status 1 when the kernel was idle while a cell ran.
"""
import sys
import time

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpec


def main() -> int:
    km = KernelManager()
    km._kernel_spec = KernelSpec(argv=sys.argv[1:], display_name="TypeScript", language="typescript")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        first = kc.execute("await new Promise((r) => setTimeout(r, 500));")
        last = kc.execute("await new Promise((r) => setTimeout(r, 1500));")
        names = {first: "cell 1", last: "cell 2"}
        t0 = time.time()
        seq = []
        state = None
        idle_while_running = False
        while True:
            m = kc.get_iopub_msg(timeout=30)
            if m["msg_type"] != "status":
                continue
            parent = m["parent_header"].get("msg_id")
            state = m["content"]["execution_state"]
            seq.append(f"{time.time() - t0:.1f}s {state} ({names.get(parent, 'other')})")
            if state == "idle" and parent == last:
                break
            # the last status of a burst is what the front end shows; look again after a moment
            if state == "idle" and kc.iopub_channel.msg_ready() is False:
                time.sleep(0.2)
                if not kc.iopub_channel.msg_ready():
                    idle_while_running = True
        print("  ".join(seq))
        return 1 if idle_while_running else 0
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    sys.exit(main())
