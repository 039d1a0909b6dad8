"""Small random-weight GGUF models for tests: ``write_model(path, arch, quant, seed=..., **shape)``.

The files look like llama.cpp's own (metadata keys, tensor names and shapes,
per-tensor quant types of the llama.cpp mixes, a trained tokenizer with a chat
template), so code that reads real models can be tested without downloading one.
"""

from .model_spec import ARCHS
from .model_writer import write_model
from .quant_mix import SUPPORTED_QUANTS
from .weights import reference_tensors

__all__ = ["ARCHS", "SUPPORTED_QUANTS", "reference_tensors", "write_model"]
