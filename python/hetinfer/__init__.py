"""hetinfer: run GGUF language models across unlike devices in one process.

Today: a validating memory-mapped GGUF reader, every GGUF quantisation type
on the CPU (dequantise, quantise, matmul), llama / qwen2 / qwen3 / gemma3
models on the CPU (``hetinfer.load``), and a writer of small random-weight test
models (``hetinfer.testing``).
"""

from __future__ import annotations

try:
    from . import _core  # noqa: F401
except ImportError as e:  # pragma: no cover - only when the native build is missing
    raise ImportError(
        "hetinfer's native module (hetinfer._core) is missing or failed to load: "
        f"{e}. Install the package with `pip install .` so the C++ core is built."
    ) from e

from .chat_template import ChatTemplate, ChatTemplateError
from .errors import GGUFError
from .gguf_file import GGUFFile, GGUFTensor, dequantize, open_gguf
from .model import Model
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


def load(path, *, devices=None, n_ctx: int = 4096, n_batch: int = 512, n_parallel: int = 1,
         cache_type_k: str = "f16", cache_type_v: str = "f16", n_threads: int | None = None,
         seed: int | None = None, progress: bool | None = None) -> Model:
    """Load a GGUF model for inference.

    devices: device names (this build: ["cpu"]); n_ctx: context per sequence;
    n_batch: prompt tokens per forward pass; n_parallel: sequences that can be
    active at once; cache_type_k/v: "f16", "q8_0", "q4_0" or "f32"; n_threads:
    CPU threads (default: all); seed: default sampling seed; progress: show a
    loading bar for models of 1 GiB or more (None: only on a terminal).
    """
    return Model(path, devices=devices, n_ctx=n_ctx, n_batch=n_batch, n_parallel=n_parallel,
                 cache_type_k=cache_type_k, cache_type_v=cache_type_v, n_threads=n_threads, seed=seed,
                 progress=progress)

__all__ = [
    "ChatTemplate", "ChatTemplateError", "Model", "load", "GGUFError", "GGUFFile", "GGUFTensor", "SUPPORTED_TYPES", "cpu_features", "dequantize",
    "get_num_threads", "kernel_path", "matmul", "open_gguf", "quantize", "set_kernel_path",
    "set_num_threads",
]
