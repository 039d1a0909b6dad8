"""Matmul time of two builds of the native module in one process, interleaved.

    python bench/ab_native.py OLD_CORE.so [--types Q4_0 Q4_K Q6_K] [--n 1 512] [-r 15] [-t 2]

OLD_CORE.so is a `_core` module built from another commit (copy it out of
build/ before rebuilding). This VM's speed drifts by tens of percent within
minutes, so the two builds alternate call by call and the table reports
medians and their ratio. Only the module being timed has a thread pool of
-t threads; the other is set to one thread so its workers cannot compete.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time

import numpy as np

from hetinfer import _core
from hetinfer.quants import qtype
from hetinfer.testing.samples import random_weights

SHAPES = [(2048, 2048), (5632, 2048), (2048, 5632)]  # llama1b: attention, ffn gate/up, ffn down


def load_other(path: str):
    spec = importlib.util.spec_from_file_location("oldpkg._core", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(mod, other, threads: int, args) -> float:
    other.set_num_threads(1)
    mod.set_num_threads(threads)
    mod.matmul(*args)  # wakes the pool's workers
    start = time.perf_counter()
    mod.matmul(*args)
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("--types", nargs="+", default=["Q4_0", "Q4_K", "Q6_K"])
    ap.add_argument("--n", nargs="+", type=int, default=[1, 512])
    ap.add_argument("-r", type=int, default=15)
    ap.add_argument("-t", type=int, default=2)
    a = ap.parse_args()
    old = load_other(a.old)
    rng = np.random.default_rng(0)
    print("| type | rows x k | n | old ms | new ms | new/old |")
    print("|---|---|---:|---:|---:|---:|")
    for t in a.types:
        for rows, k in SHAPES:
            w = random_weights(qtype(t), rows, k, rng)
            for n in a.n:
                x = rng.standard_normal((n, k)).astype(np.float32)
                args = (int(qtype(t)), w, rows, k, x)
                pairs = [(timed(old, _core, a.t, args), timed(_core, old, a.t, args)) for _ in range(a.r)]
                o, m = (statistics.median(p[i] for p in pairs) * 1e3 for i in (0, 1))
                print(f"| {t} | {rows}x{k} | {n} | {o:.2f} | {m:.2f} | {m / o:.2f} |", flush=True)


if __name__ == "__main__":
    main()
