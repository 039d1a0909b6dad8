"""The table of a CUDA session (bench/cuda_session.sh): hetinfer beside
llama.cpp on the same GGUF files, and one-sequence decode as a share of the
device-to-device copy bandwidth, against issue 5's targets.

    python bench/cuda_summary.py RESULTS_DIR MODEL.gguf [MODEL.gguf ...]

RESULTS_DIR holds, for each model NAME (the file name without .gguf):
hetinfer-NAME-xP.json (`hetinfer bench --json`, one per parallel count P;
hetinfer-NAME-x1-dD.json: after D tokens, -d D),
blocks-NAME-xP.json (the same with HETINFER_CUDA_WEIGHTS=blocks: weights as
the file's blocks, not planar rows), llamacpp-NAME.json (`llama-bench
-o json`; llamacpp-NAME-dD.json: -d D), llamacpp-batched-NAME.jsonl
(`llama-batched-bench --output-format jsonl`), and hbm.json
(bench/hbm_bandwidth.cu). Missing files leave blanks. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from hetinfer.errors import GGUFError
from hetinfer.gguf_file import open_gguf

TG_VS_LLAMA_CPP = 1.2   # issue 5: tg >= 1.2x llama.cpp
TG_VS_COPY = 0.75       # and >= 75% of the measured copy bandwidth
PP_VS_LLAMA_CPP = 1.0   # pp >= 1.0x llama.cpp


def decode_bytes(path: Path) -> int | None:
    """Bytes one decode step reads from the weights: every tensor but the
    embedding table, of which a step reads one row, unless the output head is
    tied to it (then the head reads all of it). None when the file is missing
    or unreadable (its writer failed): the other models' rows still come out."""
    try:
        f = open_gguf(path)
    except GGUFError:
        return None
    with f:
        total = sum(t.nbytes for t in f.tensors.values())
        embd = f.tensors.get("token_embd.weight")
        tied = "output.weight" not in f.tensors
        return total - (embd.nbytes if embd is not None and not tied else 0)


def load_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def hetinfer_rates(folder: Path, name: str, layout: str = "hetinfer") -> dict[str, float]:
    """test name ("pp512", "tg128", "tg128 x4") -> median tokens/s; layout
    "blocks": the runs with the weights as the file's blocks."""
    return {r["test"]: r["tokens_per_second"]
            for path in sorted(folder.glob(f"{layout}-{name}-x*.json")) for r in load_json(path) or []}


def llama_cpp_rates(folder: Path, name: str) -> dict[str, float]:
    """The same test names for llama.cpp: llama-bench for ppN and tgN (median
    of its samples, as hetinfer reports), llama-batched-bench for tgN xP."""
    rates = {}
    paths = [folder / f"llamacpp-{name}.json", *sorted(folder.glob(f"llamacpp-{name}-d*.json"))]
    runs = [load_json(path) or [] for path in paths]
    for r in (r for run in runs for r in run):
        test = f"pp{r['n_prompt']}" if r["n_prompt"] else f"tg{r['n_gen']}"
        if r.get("n_depth"):
            test += f" @ d{r['n_depth']}"  # hetinfer bench -d names its tests alike
        rates[test] = statistics.median(r.get("samples_ts") or [r["avg_ts"]])
    try:
        lines = (folder / f"llamacpp-batched-{name}.jsonl").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        if line.startswith('{"n_kv_max"'):
            r = json.loads(line)
            if r["pl"] > 1:
                rates[f"tg{r['tg']} x{r['pl']}"] = r["speed_tg"]
    return rates


def verdict(test: str, ratio: float | None, copy_share: float | None) -> str:
    if ratio is None or " @ d" in test:  # the targets are for an empty context
        return ""
    if test.startswith("pp"):
        return "met" if ratio >= PP_VS_LLAMA_CPP else "missed"
    met = ratio >= TG_VS_LLAMA_CPP and (copy_share is None or copy_share >= TG_VS_COPY)
    return "met" if met else "missed"


def table(folder: Path, models: list[Path]) -> str:
    hbm = load_json(folder / "hbm.json")
    copy_gbps = hbm["median_GBps"] if hbm else None
    rows = ["| model | test | hetinfer t/s | llama.cpp t/s | ratio | decode GB/s | of copy | target "
            "| blocks t/s | planar / blocks |",
            "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for path in models:
        name = path.name.removesuffix(".gguf")
        ours, theirs = hetinfer_rates(folder, name), llama_cpp_rates(folder, name)
        blocks = hetinfer_rates(folder, name, "blocks")
        per_token = decode_bytes(path)
        for test in sorted(set(ours) | set(theirs), key=lambda t: (not t.startswith("pp"), len(t), t)):
            a, b = ours.get(test), theirs.get(test)
            ratio = a / b if a and b else None
            single_decode = test.startswith("tg") and " x" not in test and " @ d" not in test  # weights alone
            gbps = a * per_token / 1e9 if a and per_token and single_decode else None
            share = gbps / copy_gbps if gbps and copy_gbps else None
            c = blocks.get(test)
            cells = [name, test, f"{a:.1f}" if a else "", f"{b:.1f}" if b else "",
                     f"{ratio:.2f}x" if ratio else "", f"{gbps:.0f}" if gbps else "",
                     f"{share:.0%}" if share else "", verdict(test, ratio, share),
                     f"{c:.1f}" if c else "", f"{a / c:.2f}x" if a and c else ""]
            rows.append("| " + " | ".join(cells) + " |")
    head = f"Copy bandwidth: {copy_gbps:.0f} GB/s ({hbm['device']})\n\n" if hbm else "Copy bandwidth: not measured\n\n"
    return head + "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("models", type=Path, nargs="+")
    args = parser.parse_args()
    print(table(args.folder, args.models))


if __name__ == "__main__":
    main()
