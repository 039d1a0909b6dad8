"""GGUF tensor types and the native quantise / dequantise / matmul kernels.

Types are named as in GGUF ("Q4_K", "F16", ...) or given as
``gguf.GGMLQuantizationType`` members.
"""

from __future__ import annotations

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType

from . import _core

SUPPORTED_TYPES: tuple[GGMLQuantizationType, ...] = tuple(
    GGMLQuantizationType[name]
    for name in ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                 "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")
)


def qtype(t: str | int | GGMLQuantizationType) -> GGMLQuantizationType:
    """The supported GGML type named by ``t``; ValueError naming the supported ones otherwise."""
    try:
        if isinstance(t, str):
            resolved = GGMLQuantizationType[t.upper()]
        else:
            resolved = GGMLQuantizationType(int(t))
    except (KeyError, ValueError):
        resolved = None
    if resolved not in SUPPORTED_TYPES:
        names = ", ".join(s.name for s in SUPPORTED_TYPES)
        raise ValueError(f"unsupported tensor type {t!r}; supported: {names}")
    return resolved


def block_size(t: str | int | GGMLQuantizationType) -> tuple[int, int]:
    """(values per block, bytes per block) of a type."""
    return GGML_QUANT_SIZES[qtype(t)]


def row_bytes(t: str | int | GGMLQuantizationType, n: int) -> int:
    """Bytes of ``n`` values of type ``t``; ValueError if n is not a whole number of blocks."""
    values, nbytes = block_size(t)
    if n % values:
        raise ValueError(f"{qtype(t).name} needs rows of a multiple of {values} values, got {n}")
    return n // values * nbytes


def quantize(data: np.ndarray, t: str | int | GGMLQuantizationType) -> np.ndarray:
    """float values (..., n) -> uint8 (..., row_bytes(t, n)), the bytes GGUF stores."""
    qt = qtype(t)
    x = np.ascontiguousarray(data, dtype=np.float32)
    if x.ndim == 0:
        raise ValueError("quantize needs at least one dimension")
    out_row = row_bytes(qt, x.shape[-1])
    return _core.quantize(int(qt), x.reshape(-1)).reshape(*x.shape[:-1], out_row)


def dequantize_bytes(raw: np.ndarray, t: str | int | GGMLQuantizationType,
                     shape: tuple[int, ...]) -> np.ndarray:
    """Raw GGUF bytes of type ``t`` -> float32 array of ``shape`` (numpy order)."""
    qt = qtype(t)
    n = int(np.prod(shape, dtype=np.int64))
    if shape and shape[-1] % GGML_QUANT_SIZES[qt][0]:
        raise ValueError(f"{qt.name} rows need a multiple of {GGML_QUANT_SIZES[qt][0]} values, got shape {shape}")
    flat = np.asarray(raw, dtype=np.uint8).reshape(-1)
    return _core.dequantize(int(qt), flat, n).reshape(shape)


def matmul(weight: np.ndarray, t: str | int | GGMLQuantizationType, rows: int, x: np.ndarray) -> np.ndarray:
    """y (n, rows) = x (n, k) @ W.T for W (rows, k) stored as raw bytes of type ``t``.

    Quantised types quantise x to 8-bit blocks and use integer dot products.
    """
    qt = qtype(t)
    x2 = np.ascontiguousarray(x, dtype=np.float32)
    if x2.ndim == 1:
        x2 = x2[None, :]
    if x2.ndim != 2:
        raise ValueError(f"x must be (n, k) or (k,), got shape {np.shape(x)}")
    return _core.matmul(int(qt), np.asarray(weight, dtype=np.uint8).reshape(-1), int(rows), x2.shape[1], x2)


def set_num_threads(n: int) -> None:
    """Threads the CPU kernels use (default: all hardware threads)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    _core.set_num_threads(n)


def get_num_threads() -> int:
    return _core.get_num_threads()


def set_kernel_path(name: str) -> None:
    """Force the CPU kernel path: "auto" (best available), "avx2" or "scalar"."""
    _core.set_kernel_path(name)


def kernel_path() -> str:
    return _core.kernel_path()


def cpu_features() -> dict[str, bool]:
    return _core.cpu_features()
