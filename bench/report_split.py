"""Markdown table (and optionally a bar chart) of a bench/test_split.py run.

    pytest bench/test_split.py --benchmark-only --benchmark-json=split.json
    python bench/report_split.py split.json [--plot split.png]

Tokens per second are from each case's median time; the ratio column is
against split none of the same test, from the same run.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict


def rows(doc: dict) -> dict[str, dict[str, dict]]:
    """test -> mode -> {tps, transfers, bytes}."""
    out: dict[str, dict[str, dict]] = defaultdict(dict)
    for b in doc["benchmarks"]:
        info = b["extra_info"]
        test = b["name"].split("[")[0].removeprefix("test_")
        n_seq = b["params"].get("n_seq") if b.get("params") else None
        test = f"{test}{N if (N := info['tokens_per_call']) and test == 'pp' else ''}" + \
            (f" x{n_seq} seq" if n_seq else "")
        out[test][info["mode"]] = {"tps": info["tokens_per_call"] / b["stats"]["median"],
                                   "transfers": info["transfers_per_token"],
                                   "bytes": info["transfer_bytes_per_token"], "devices": info["devices"],
                                   "micro": info["micro_batches"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("json")
    ap.add_argument("--plot", help="also draw tokens/s per test and mode to this file")
    a = ap.parse_args()
    with open(a.json) as f:
        data = rows(json.load(f))
    print("| test | split | devices | tokens/s | vs none | transfers/token | KiB moved/token |")
    print("|---|---|---|---:|---:|---:|---:|")
    for test, modes in data.items():
        base = modes.get("none", {}).get("tps")
        for mode, r in modes.items():
            ratio = f"{r['tps'] / base:.2f}" if base else "-"
            print(f"| {test} | {mode} | {r['devices']} | {r['tps']:.1f} | {ratio} | {r['transfers']:.3g} | "
                  f"{r['bytes'] / 1024:.1f} |")
    if a.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        tests = list(data)
        modes = sorted({m for v in data.values() for m in v})
        fig, ax = plt.subplots(figsize=(8, 4))
        width = 0.8 / len(modes)
        for i, mode in enumerate(modes):
            ax.bar([t + i * width for t in range(len(tests))], [data[t].get(mode, {}).get("tps", 0) for t in tests],
                   width, label=mode)
        ax.set_xticks([t + 0.4 - width / 2 for t in range(len(tests))], tests)
        ax.set_ylabel("tokens/s (median)")
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(a.plot, dpi=110)


if __name__ == "__main__":
    main()
