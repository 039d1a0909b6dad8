"""Random but valid quantised matrices, written without quantising: random
code bytes, with each block's float16 scale fields set to small random
values, so dequantised weights are finite and of a realistic size."""

from __future__ import annotations

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType as Q

# Byte offsets of each block's float16 fields (d, and dmin or m), from ggml's block structs.
_HALF_FIELDS: dict[Q, tuple[int, ...]] = {
    Q.Q4_0: (0,), Q.Q4_1: (0, 2), Q.Q5_0: (0,), Q.Q5_1: (0, 2), Q.Q8_0: (0,),
    Q.Q2_K: (80, 82), Q.Q3_K: (108,), Q.Q4_K: (0, 2), Q.Q5_K: (0, 2), Q.Q6_K: (208,),
}
# The largest |code x sub-block scale| a block can hold: its float16 fields are
# drawn so that weights stay under 0.1 in magnitude.
_LARGEST_CODE: dict[Q, int] = {
    Q.Q4_0: 8, Q.Q4_1: 15, Q.Q5_0: 16, Q.Q5_1: 31, Q.Q8_0: 128,
    Q.Q2_K: 3 * 15, Q.Q3_K: 4 * 32, Q.Q4_K: 15 * 63, Q.Q5_K: 31 * 63, Q.Q6_K: 32 * 128,
}


def random_blocks(qtype: Q, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(rows, row_bytes) uint8 of a (rows, cols) matrix in ``qtype``; float types get N(0, 0.02) values."""
    rows, cols = shape
    if qtype in (Q.F32, Q.F16, Q.BF16):
        values = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.02)
        if qtype == Q.F32:
            return values.view(np.uint8)
        if qtype == Q.F16:
            return values.astype(np.float16).view(np.uint8)
        return (values.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)  # bfloat16 by truncation
    if qtype not in _HALF_FIELDS:
        raise ValueError(f"random_blocks: no layout for {qtype.name}")
    block_values, block_bytes = GGML_QUANT_SIZES[qtype]
    if cols % block_values:
        raise ValueError(f"random_blocks: {cols} columns are not whole {qtype.name} blocks of {block_values}")
    n_blocks = rows * cols // block_values
    blocks = rng.integers(0, 256, (n_blocks, block_bytes), dtype=np.uint8)
    for offset in _HALF_FIELDS[qtype]:
        scales = (rng.uniform(0.01, 0.05, n_blocks) / _LARGEST_CODE[qtype]).astype(np.float16)
        blocks[:, offset:offset + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(rows, cols // block_values * block_bytes)
