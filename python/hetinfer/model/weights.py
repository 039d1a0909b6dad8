"""The tensors of a GGUF model as the native stage takes them: zero-copy views
of the memory map, checked for presence, type support and shape."""

from __future__ import annotations

import numpy as np

from ..errors import GGUFError
from ..gguf_file import GGUFFile, GGUFTensor
from .arch import ArchConfig

# Stage key -> (tensor name after "blk.N.", required by every architecture)
LAYER_TENSORS = {
    "attn_norm": ("attn_norm.weight", True),
    "attn_q": ("attn_q.weight", True),
    "attn_k": ("attn_k.weight", True),
    "attn_v": ("attn_v.weight", True),
    "attn_output": ("attn_output.weight", True),
    "attn_q.bias": ("attn_q.bias", False),
    "attn_k.bias": ("attn_k.bias", False),
    "attn_v.bias": ("attn_v.bias", False),
    "attn_q_norm": ("attn_q_norm.weight", False),
    "attn_k_norm": ("attn_k_norm.weight", False),
    "post_attention_norm": ("post_attention_norm.weight", False),
    "ffn_norm": ("ffn_norm.weight", True),
    "ffn_gate": ("ffn_gate.weight", True),
    "ffn_up": ("ffn_up.weight", True),
    "ffn_down": ("ffn_down.weight", True),
    "post_ffw_norm": ("post_ffw_norm.weight", False),
}


def weight_spec(t: GGUFTensor) -> tuple[int, np.ndarray, int, int]:
    """(type_id, bytes, rows, cols) of a tensor, as csrc/bindings_model.cpp takes it."""
    if not t.supported:
        t.dequantize()  # raises GGUFError naming the tensor and its unsupported type
    rows, cols = (1, t.shape[0]) if len(t.shape) == 1 else (int(np.prod(t.shape[:-1])), t.shape[-1])
    return int(t.type), t.data, rows, cols


def require_tensor(f: GGUFFile, name: str) -> GGUFTensor:
    t = f.tensors.get(name)
    if t is None:
        raise GGUFError(f.path, None, f"missing tensor {name!r}, which the {f.architecture} architecture needs")
    return t


def layer_tensors(f: GGUFFile, il: int) -> dict[str, GGUFTensor]:
    """Stage key -> tensor of layer il: every tensor the stage places on its device."""
    out = {}
    for key, (suffix, required) in LAYER_TENSORS.items():
        name = f"blk.{il}.{suffix}"
        if required or name in f.tensors:
            out[key] = require_tensor(f, name)
    return out


def layer_specs(f: GGUFFile, cfg: ArchConfig, first: int, last: int) -> list[dict]:
    """One dict per layer in [first, last): rope/window settings and weight specs."""
    layers = []
    for il in range(first, last):
        settings = cfg.layers[il]
        d: dict = {"rope_base": settings.rope_base, "rope_freq_scale": settings.rope_freq_scale,
                   "window": settings.window}
        d.update({key: weight_spec(t) for key, t in layer_tensors(f, il).items()})
        layers.append(d)
    return layers


def output_tensor(f: GGUFFile) -> GGUFTensor:
    """output.weight, or the token embedding when the model ties them."""
    return f.tensors.get("output.weight") or require_tensor(f, "token_embd.weight")


PREFETCH_MIN_BYTES = 1 << 30  # smaller models load at once: no bar
_CHUNK = 64 << 20


def prefetch(f: GGUFFile, progress: bool | None = None) -> None:
    """Reads the tensor data once, sequentially, so the first forward pass does
    not stall on page faults; shows a progress bar for models of 1 GiB or more
    (``progress`` None: only on a terminal, as tqdm decides)."""
    from tqdm import tqdm

    start, end = f.data_offset, max(t.offset + t.nbytes for t in f.tensors.values())
    if end - start < PREFETCH_MIN_BYTES:
        return
    buf = bytearray(_CHUNK)
    with open(f.path, "rb", buffering=0) as fh, tqdm(total=end - start, unit="B", unit_scale=True,
                                                      desc="loading", disable=None if progress is None else not progress,
                                                      leave=False) as bar:
        fh.seek(start)
        remaining = end - start
        while remaining > 0:
            n = fh.readinto(memoryview(buf)[:min(_CHUNK, remaining)])
            if not n:
                break
            remaining -= n
            bar.update(n)
