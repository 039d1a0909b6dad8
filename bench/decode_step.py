"""Time of one decode step with n sequences (n tokens, one per sequence):
the layers (Model.decode) and the output head (Model.head), medians.

    python bench/decode_step.py [MODEL] [--n 1 2 4 5 8] [-r 9] [--devices sycl:0]

This is what a server step costs with n busy slots.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import hetinfer
from hetinfer.cli import default_model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?")
    ap.add_argument("--n", nargs="+", type=int, default=[1, 2, 4, 5, 8])
    ap.add_argument("-r", type=int, default=9)
    ap.add_argument("--devices", nargs="+", help="devices to load onto (default: hetinfer.load's choice)")
    a = ap.parse_args()
    most = max(a.n)
    with hetinfer.load(a.model or default_model_path(), n_ctx=64, n_parallel=most, devices=a.devices) as m:
        for s in range(most):  # a short history per sequence
            m.prefill([1, 100 + s, 200 + s], seq_id=s)
        print("| n | layers ms | head ms |")
        print("|---:|---:|---:|")
        for n in a.n:
            times = []
            for _ in range(a.r):
                seq, pos = np.arange(n, dtype=np.int32), np.full(n, 3, np.int32)
                t0 = time.perf_counter()
                hidden = m.decode(np.arange(300, 300 + n, dtype=np.int32), seq, pos)
                t1 = time.perf_counter()
                m.head(hidden)
                times.append((t1 - t0, time.perf_counter() - t1))
                for s in range(n):
                    m.remove_sequence(s, 3)
            layers, head = (statistics.median(t[i] for t in times) * 1e3 for i in (0, 1))
            print(f"| {n} | {layers:.1f} | {head:.1f} |", flush=True)


if __name__ == "__main__":
    main()
