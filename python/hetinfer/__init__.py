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
from .planner import Plan, PlanError, plan
from .devices import DeviceError, list_devices
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


def load(path, *, devices=None, split: str = "layer", tensor_split=None, max_memory=None, n_ctx: int = 4096,
         n_batch: int = 512, n_parallel: int = 1, cache_type_k: str = "f16", cache_type_v: str = "f16",
         n_threads: int | dict | None = None, micro_batches: int | None = None, seed: int | None = None,
         progress: bool | None = None) -> Model:
    """Load a GGUF model for inference.

    devices: device names, e.g. ["cpu"], ["sycl:0"] or ["cpu", "sycl:0"] (default: the
    best available device); split: "layer" (contiguous layers per device) or
    "none"; tensor_split: the layer ratio per device, e.g. [3, 2] (default:
    free memory); max_memory: a cap per device, e.g. {"cpu": "6GiB"};
    n_ctx: context per sequence; n_batch: prompt tokens per forward pass;
    n_parallel: sequences that can be active at once; cache_type_k/v: "f16",
    "q8_0", "q4_0" or "f32"; n_threads: CPU threads, an int for the shared
    pool (default: all) or {"cpu:1": 2} for a device's own pool;
    micro_batches: with a layer split, each batch is cut into this many
    micro-batches that flow through the stages at the same time (default:
    the number of devices; 1 runs the stages one after another); seed: default
    sampling seed; progress: show a loading bar for models of 1 GiB or more
    (None: only on a terminal). The planner (see hetinfer.plan) decides what
    goes where; a model that does not fit raises PlanError before anything is
    allocated, with the table and what would fit.
    """
    return Model(path, devices=devices, split=split, tensor_split=tensor_split, max_memory=max_memory, n_ctx=n_ctx,
                 n_batch=n_batch, n_parallel=n_parallel, cache_type_k=cache_type_k, cache_type_v=cache_type_v,
                 n_threads=n_threads, micro_batches=micro_batches, seed=seed, progress=progress)

__all__ = [
    "DeviceError", "Plan", "PlanError", "list_devices", "plan",
    "ChatTemplate", "ChatTemplateError", "Model", "load", "GGUFError", "GGUFFile", "GGUFTensor", "SUPPORTED_TYPES", "cpu_features", "dequantize",
    "get_num_threads", "kernel_path", "matmul", "open_gguf", "quantize", "set_kernel_path",
    "set_num_threads",
]
