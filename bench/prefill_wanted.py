"""Prefill with the last layer's feed-forward for every prompt token (as
before 2026-12-07) against only for the token whose logits are wanted (what
Model.prefill does: llama.cpp's way), in one process on one build, the two
alternated so the machine's drift falls on both. Prints the medians, and the
median of each pair's ratio (a pair: the two runs side by side), which drift
between pairs does not move.

    python bench/prefill_wanted.py [MODEL] [-p 512] [-r 7] [--devices cpu] [--n-batch 512]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import hetinfer
from hetinfer.cli import default_model_path


def prefill(m, tokens: np.ndarray, prune: bool) -> np.ndarray:
    """Model.prefill's chunks; prune=False runs every row through every layer."""
    last = None
    for first in range(0, tokens.size, m.n_batch):
        chunk = tokens[first:first + m.n_batch]
        pos = np.arange(first, first + chunk.size, dtype=np.int32)
        final = first + chunk.size == tokens.size
        wanted = ([chunk.size - 1] if final else []) if prune else None
        hidden = m.decode(chunk, np.zeros(chunk.size, np.int32), pos, wanted)
        if final:
            last = m.head(hidden[-1:])
    return last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?")
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (default 512)")
    ap.add_argument("-r", type=int, default=7, help="timed runs of each (default 7), after one warm-up each")
    ap.add_argument("--n-batch", type=int, default=512)
    ap.add_argument("--devices", nargs="+", help="devices to load onto (default: hetinfer.load's choice)")
    a = ap.parse_args()
    with hetinfer.load(a.model or default_model_path(), n_ctx=a.p, n_batch=a.n_batch, devices=a.devices) as m:
        tokens = np.random.default_rng(0).integers(0, m.n_vocab, a.p).astype(np.int32)
        times: dict[bool, list[float]] = {False: [], True: []}
        logits = {}
        for run in range(a.r + 1):
            for prune in (False, True):
                m.remove_sequence(0)
                t0 = time.perf_counter()
                logits[prune] = prefill(m, tokens, prune)
                if run:  # the first of each warms caches
                    times[prune].append(time.perf_counter() - t0)
        m.remove_sequence(0)
        every, wanted = (a.p / statistics.median(times[p]) for p in (False, True))
        pairs = statistics.median(e / w for e, w in zip(times[False], times[True]))
        same = np.array_equal(logits[False], logits[True])
        print(f"| model | pp{a.p} every row t/s | wanted row t/s | ratio of medians | median pair ratio "
              "| logits identical |")
        print("|---|---:|---:|---:|---:|---|")
        print(f"| {m.name} | {every:.1f} | {wanted:.1f} | {wanted / every:.3f}x | {pairs:.3f}x | {same} |")


if __name__ == "__main__":
    main()
