"""Quantisation error per type: hetinfer's quantisers beside gguf.quants.quantize.

    python bench/quant_rmse.py [--rows 256] [--cols 4096] [--seed 0]

Prints a markdown table of RMSE / std of the input, for Gaussian and
Student-t(3) data, and the bits per weight of each type. gguf.quants has no
quantiser for the K types, so their gguf column is empty.
"""

from __future__ import annotations

import argparse

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import quantize as gguf_quantize

import hetinfer
from hetinfer.quants import dequantize_bytes, quantize


def rel_rmse(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2)) / np.std(x))


def gguf_rmse(t: GGMLQuantizationType, x: np.ndarray) -> float | None:
    try:
        raw = np.asarray(gguf_quantize(x, t)).view(np.uint8)
    except NotImplementedError:
        return None
    return rel_rmse(x, dequantize_bytes(raw, t, x.shape))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=256)
    ap.add_argument("--cols", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    data = {
        "gauss": rng.standard_normal((args.rows, args.cols)).astype(np.float32),
        "t3": rng.standard_t(3, (args.rows, args.cols)).astype(np.float32),
    }
    print("| type | bits/weight | hetinfer gauss | gguf gauss | hetinfer t(3) | gguf t(3) |")
    print("|---|---:|---:|---:|---:|---:|")
    for t in hetinfer.SUPPORTED_TYPES:
        if t == GGMLQuantizationType.F32:
            continue
        values, nbytes = GGML_QUANT_SIZES[t]
        cells = []
        for x in data.values():
            ours = rel_rmse(x, dequantize_bytes(quantize(x, t), t, x.shape))
            theirs = gguf_rmse(t, x)
            cells += [f"{ours:.4f}", "—" if theirs is None else f"{theirs:.4f}"]
        print(f"| {t.name} | {8 * nbytes / values:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
