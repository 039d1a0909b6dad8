"""hetinfer: run GGUF language models across unlike devices in one process.

This release holds the foundation: a validating memory-mapped GGUF reader,
every GGUF quantisation type on the CPU (dequantise, quantise, matmul), and
a writer of small random-weight test models (``hetinfer.testing``).
"""

from __future__ import annotations

try:
    from . import _core  # noqa: F401
except ImportError as e:  # pragma: no cover - only when the native build is missing
    raise ImportError(
        "hetinfer's native module (hetinfer._core) is missing or failed to load: "
        f"{e}. Install the package with `pip install .` so the C++ core is built."
    ) from e

from .errors import GGUFError
from .gguf_file import GGUFFile, GGUFTensor, dequantize, open_gguf
from .quants import (
    SUPPORTED_TYPES,
    cpu_features,
    get_num_threads,
    kernel_path,
    matmul,
    quantize,
    set_kernel_path,
    set_num_threads,
)

__version__ = "0.1.0"

__all__ = [
    "GGUFError", "GGUFFile", "GGUFTensor", "SUPPORTED_TYPES", "cpu_features", "dequantize",
    "get_num_threads", "kernel_path", "matmul", "open_gguf", "quantize", "set_kernel_path",
    "set_num_threads",
]
