"""Decode matvec (n = 1) per GGUF type, beside a memcpy of the same weight bytes.

    pytest bench/test_matvec.py --benchmark-only --benchmark-json=matvec.json
    python bench/report_matvec.py matvec.json      # markdown table with GB/s and ratios

Each case records in extra_info the weight bytes streamed per call; the copy
cases copy exactly those bytes with the same thread count, so the report can
put GB/s and kernel/copy ratios side by side from one run.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import hetinfer
from hetinfer.quants import matmul
from hetinfer.testing.samples import random_weights

SHAPES = [(4096, 4096), (14336, 4096)]  # (rows, k): attention-sized and Llama-3-8B ffn-sized
THREADS = sorted({1, os.cpu_count() or 1})
TYPES = [t.name for t in hetinfer.SUPPORTED_TYPES]


@pytest.fixture(params=THREADS, ids=lambda n: f"{n}t")
def threads(request):
    before = hetinfer.get_num_threads()
    hetinfer.set_num_threads(request.param)
    yield request.param
    hetinfer.set_num_threads(before)


@pytest.fixture(scope="module")
def weights():
    cache: dict = {}
    rng = np.random.default_rng(0)

    def get(t: str, rows: int, k: int) -> np.ndarray:
        if (t, rows, k) not in cache:
            cache.clear()  # one matrix at a time keeps memory flat
            cache[(t, rows, k)] = random_weights(hetinfer.quants.qtype(t), rows, k, rng)
        return cache[(t, rows, k)]

    return get


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("t", TYPES)
def test_matvec(benchmark, weights, t, shape, threads):
    rows, k = shape
    w = weights(t, rows, k)
    x = np.random.default_rng(1).standard_normal((1, k)).astype(np.float32)
    benchmark.extra_info.update(kind="matvec", type=t, rows=rows, k=k, threads=threads, bytes=int(w.nbytes))
    benchmark(matmul, w, t, rows, x)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("t", TYPES)
def test_copy_same_bytes(benchmark, t, shape, threads):
    rows, k = shape
    nbytes = hetinfer.quants.row_bytes(t, k) * rows
    src = np.ones(nbytes, np.uint8)
    dst = np.empty_like(src)
    benchmark.extra_info.update(kind="copy", type=t, rows=rows, k=k, threads=threads, bytes=int(nbytes))
    benchmark(hetinfer._core.parallel_copy, src, dst)
