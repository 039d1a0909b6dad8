"""Host-side cost of rewriting weights into planar rows (what placing a
quantised tensor on a SYCL device adds to a load), beside a plain copy of the
same bytes: one 4096 x 4096 tensor per type, best of 5.

    python bench/planar_rows_speed.py
"""

from __future__ import annotations

import time

import numpy as np

from hetinfer import _core
from hetinfer.quants import qtype
from hetinfer.testing.samples import random_weights

print("| type | MB | planar ms | planar GB/s | copy ms |")
print("|---|---:|---:|---:|---:|")
for name in ("Q4_0", "Q8_0", "Q5_0", "Q4_K", "Q6_K"):
    t = qtype(name)
    rows, cols = 4096, 4096
    w = np.tile(random_weights(t, 64, cols, np.random.default_rng(0)), rows // 64)  # (rows * row bytes,)
    ts = []
    for _ in range(5):
        t0 = time.perf_counter()
        _core.planar_rows(int(t), w, cols)
        ts.append(time.perf_counter() - t0)
    cs = []
    for _ in range(5):
        t0 = time.perf_counter()
        w.copy()
        cs.append(time.perf_counter() - t0)
    print(f"| {name} | {w.nbytes / 1e6:.1f} | {min(ts) * 1e3:.1f} | {w.nbytes / min(ts) / 1e9:.2f} | {min(cs) * 1e3:.1f} |")
