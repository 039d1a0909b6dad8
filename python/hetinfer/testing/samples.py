"""Random raw blocks of each GGUF type, for tests.

Codes are random bits; the f16 scale fields are either extreme bit patterns
or sane random scales, so the same generator serves bit-exactness tests and
numeric (matmul) tests.
"""

from __future__ import annotations

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

# Byte offsets of the f16 scale fields inside one block (see kernels/common/quant_blocks.h).
HALF_FIELDS = {
    "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2], "Q8_0": [0],
    "Q2_K": [80, 82], "Q3_K": [108], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208],
}


def random_weights(t: GGMLQuantizationType, rows: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """(rows * row_bytes,) uint8: random codes with finite scales of a realistic size."""
    values, nbytes = GGML_QUANT_SIZES[t]
    n = rows * k
    if t.name == "F32":
        return rng.standard_normal(n).astype(np.float32).view(np.uint8)
    if t.name == "F16":
        return rng.standard_normal(n).astype(np.float16).view(np.uint8)
    if t.name == "BF16":
        return (rng.standard_normal(n).astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    blocks = rng.integers(0, 256, size=(n // values, nbytes), dtype=np.uint8)
    for field in HALF_FIELDS[t.name]:
        scale = (rng.uniform(0.5, 2.0, len(blocks)) * 0.01).astype(np.float16)
        blocks[:, field:field + 2] = scale.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(-1)
