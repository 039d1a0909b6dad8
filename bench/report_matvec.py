"""Markdown table from a `pytest bench/test_matvec.py --benchmark-json=FILE` run.

GB/s counts the weight bytes streamed per call (medians); "vs copy" is the
matvec's GB/s over a memcpy of the same bytes with the same threads, in the
same run. A copy reads and writes, so a copy's GB/s here counts bytes once
(read side), like the matvec.
"""

from __future__ import annotations

import json
import sys


def main(path: str) -> None:
    with open(path) as f:
        runs = json.load(f)["benchmarks"]
    med = {}
    for b in runs:
        e = b["extra_info"]
        med[(e["kind"], e["type"], e["rows"], e["k"], e["threads"])] = (b["stats"]["median"], e["bytes"])
    keys = sorted({k[1:] for k in med if k[0] == "matvec"}, key=lambda k: (k[1], k[3], k[0]))
    print("| type | rows x k | threads | matvec ms | GB/s | copy GB/s | vs copy |")
    print("|---|---|---|---:|---:|---:|---:|")
    for t, rows, k, th in keys:
        sec, nbytes = med[("matvec", t, rows, k, th)]
        gbps = nbytes / sec / 1e9
        copy = med.get(("copy", t, rows, k, th))
        copy_gbps = copy[1] / copy[0] / 1e9 if copy else float("nan")
        print(f"| {t} | {rows}x{k} | {th} | {sec * 1e3:.2f} | {gbps:.1f} | {copy_gbps:.1f} | {gbps / copy_gbps:.2f} |")


if __name__ == "__main__":
    main(sys.argv[1])
