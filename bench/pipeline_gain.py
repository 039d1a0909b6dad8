"""The gain of pipelining a layer split: the same two devices run stage after
stage (micro-batches 1) or with micro-batches flowing through both at once.

    python bench/pipeline_gain.py [MODEL] [-r 4]

Devices: cpu:0 and cpu:1 with one thread each (their own cores), beside the
whole model on one CPU device with both threads for reference. Medians of
pp256 (one sequence) and a decode step of 8 sequences, in one run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import hetinfer
from hetinfer.cli import default_model_path

TWO = {"devices": ["cpu:0", "cpu:1"], "n_threads": {"cpu:0": 1, "cpu:1": 1}}
CASES = [("cpu, 2 threads", {"devices": ["cpu"]}),
         ("cpu:0 + cpu:1, stage after stage", {**TWO, "micro_batches": 1}),
         ("cpu:0 + cpu:1, pipelined x2", {**TWO, "micro_batches": 2}),
         ("cpu:0 + cpu:1, pipelined x4", {**TWO, "micro_batches": 4})]


def measure(path: str, kwargs: dict, repeats: int) -> tuple[float, float]:
    n, n_seq = 256, 8
    ids = (np.arange(n) * 7 % 5000).astype(np.int32)
    pp, tg = [], []
    with hetinfer.load(path, n_ctx=n + 64, n_parallel=n_seq, n_batch=n, **kwargs) as m:
        for r in range(repeats):
            m.remove_sequence(0)
            start = time.perf_counter()
            m.decode(ids, np.zeros(n, np.int32), np.arange(n, dtype=np.int32))
            pp.append(n / (time.perf_counter() - start))
            seq = np.arange(n_seq, dtype=np.int32)
            start = time.perf_counter()
            for s in range(16):
                m.decode(ids[:n_seq], seq, np.full(n_seq, n + s + 16 * r, np.int32))
            tg.append(n_seq * 16 / (time.perf_counter() - start))
            for s in range(n_seq):
                m.remove_sequence(s)
    return statistics.median(pp), statistics.median(tg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?")
    ap.add_argument("-r", type=int, default=4, help="repeats")
    a = ap.parse_args()
    path = a.model or default_model_path()
    print("| case | pp256 t/s | 8-sequence decode t/s |\n|---|---:|---:|")
    for name, kwargs in CASES:
        pp, tg = measure(path, kwargs, a.r)
        print(f"| {name} | {pp:.1f} | {tg:.1f} |")


if __name__ == "__main__":
    main()
