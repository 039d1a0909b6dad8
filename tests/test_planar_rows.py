"""Planar rows (kernels/common/planar_blocks.h), the layout SYCL devices hold
quantised weights in: each row's blocks with every field stored apart, in
the field order of GGUF's block layouts. The reference here is written from
those layouts (ggml-common.h field sizes), not from the C++ field tables."""

from __future__ import annotations

import numpy as np
import pytest

import hetinfer
from hetinfer import _core
from hetinfer.quants import qtype
from hetinfer.testing.samples import random_weights

# Field sizes in bytes, in declaration order, per GGUF block type.
FIELDS = {
    "Q4_0": [2, 16],            # d, qs
    "Q4_1": [2, 2, 16],         # d, m, qs
    "Q5_0": [2, 4, 16],         # d, qh, qs
    "Q5_1": [2, 2, 4, 16],      # d, m, qh, qs
    "Q8_0": [2, 32],            # d, qs
    "Q2_K": [16, 64, 2, 2],     # scales, qs, d, dmin
    "Q3_K": [32, 64, 12, 2],    # hmask, qs, scales, d
    "Q4_K": [2, 2, 12, 128],    # d, dmin, scales, qs
    "Q5_K": [2, 2, 12, 32, 128],  # d, dmin, scales, qh, qs
    "Q6_K": [128, 64, 16, 2],   # ql, qh, scales, d
}


def planar_reference(raw: np.ndarray, rows: int, sizes: list[int]) -> np.ndarray:
    blocks = raw.reshape(rows, -1, sum(sizes))  # (rows, blocks per row, block bytes)
    ends = np.cumsum([0] + sizes)
    fields = [blocks[:, :, a:b].reshape(rows, -1) for a, b in zip(ends[:-1], ends[1:])]
    return np.concatenate(fields, axis=1).reshape(-1)


@pytest.mark.parametrize("t", [pytest.param(t, id=t.name) for t in hetinfer.SUPPORTED_TYPES])
def test_planar_rows_store_each_field_apart(rng, t):
    rows, cols = 7, 768
    raw = random_weights(t, rows, cols, rng)
    planar = _core.planar_rows(int(t), raw, cols)
    if t.name in FIELDS:
        np.testing.assert_array_equal(planar, planar_reference(raw, rows, FIELDS[t.name]))
    else:  # float rows are one value per element: unchanged
        assert t.name in ("F32", "F16", "BF16")
        np.testing.assert_array_equal(planar, raw)


def test_planar_rows_reject_a_partial_row():
    with pytest.raises(ValueError, match="whole rows"):
        _core.planar_rows(int(qtype("Q4_0")), np.zeros(19, np.uint8), 32)
