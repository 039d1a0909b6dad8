"""Per-kernel table of an Nsight Compute run over a few decode steps
(bench/cuda_session.sh's profile step): for each kernel and grid size (one
grid size per matrix shape), launches, median time, DRAM bytes read per
launch and the rate, global-load sectors per request (4 = every lane's 4
bytes in one 32-byte sector, higher = more scattered), achieved occupancy and
registers, and each row's share of the profiled time.

    ncu --csv --page raw --print-units base --print-kernel-base demangled --metrics METRICS ... > run.csv
    python bench/ncu_summary.py run.csv

METRICS is bench/ncu_summary.py's METRICS, comma-joined (the session script
passes exactly those). A run that could not be parsed prints why; its CSV is
kept beside the table.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
from collections import defaultdict
from pathlib import Path

from kernel_names import short_name

METRICS = [
    "gpu__time_duration.sum",                           # ns
    "dram__bytes_read.sum",                             # bytes
    "l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum",  # global load instructions' requests
    "l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum",   # 32-byte sectors they touched
    "sm__warps_active.avg.pct_of_peak_sustained_active",
    "launch__registers_per_thread",
    "launch__grid_size",
]


def number(text: str) -> float:
    return float(text.replace(",", "")) if text.strip() else float("nan")


def rows_of(path: Path) -> list[dict[str, str]]:
    """The CSV's kernel rows (ncu's log lines and the units row dropped)."""
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.startswith('"')]
    table = list(csv.reader(lines))
    head = next((i for i, r in enumerate(table) if "Kernel Name" in r), None)
    if head is None:
        raise ValueError(f"{path}: no header row with 'Kernel Name'")
    names = table[head]
    return [dict(zip(names, r)) for r in table[head + 1:] if len(r) == len(names) and r[0].strip()]


def table(rows: list[dict[str, str]]) -> str:
    groups: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for r in rows:
        groups[(short_name(r["Kernel Name"]), r.get("launch__grid_size", ""))].append(r)
    total = sum(number(r["gpu__time_duration.sum"]) for r in rows)
    out = ["| kernel | grid | launches | median us | DRAM read KB | GB/s | sectors/request | occupancy % | regs "
           "| share of time |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    by_time = sorted(groups.items(), key=lambda kv: -sum(number(r["gpu__time_duration.sum"]) for r in kv[1]))
    for (name, grid), rs in by_time:
        def med(metric: str) -> float:
            return statistics.median(number(r.get(metric, "")) for r in rs)
        ns, read = med("gpu__time_duration.sum"), med("dram__bytes_read.sum")
        requests = med("l1tex__t_requests_pipe_lsu_mem_global_op_ld.sum")
        sectors = med("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum")
        share = sum(number(r["gpu__time_duration.sum"]) for r in rs) / total if total else float("nan")
        out.append(f"| `{name}` | {grid} | {len(rs)} | {ns / 1e3:.1f} | {read / 1e3:.0f} | {read / ns:.0f} "
                   f"| {sectors / requests if requests else float('nan'):.1f} "
                   f"| {med('sm__warps_active.avg.pct_of_peak_sustained_active'):.0f} "
                   f"| {med('launch__registers_per_thread'):.0f} | {share:.0%} |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", type=Path, nargs="?")
    ap.add_argument("--metrics", action="store_true", help="print METRICS comma-joined and exit")
    args = ap.parse_args()
    if args.metrics:
        print(",".join(METRICS))
        return
    if args.csv is None:
        ap.error("give the CSV of an ncu run")
    try:
        print(table(rows_of(args.csv)))
    except (OSError, ValueError, KeyError, statistics.StatisticsError) as e:
        sys.exit(f"no table: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
