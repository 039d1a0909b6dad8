"""Architecture configs read from GGUF metadata.

llama, qwen2, qwen3 and gemma3 are settings of one generic decoder block
(csrc/model/block_config.h); this module turns a file's metadata into those
settings, following how llama.cpp reads the same keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_ARCHS = ("llama", "qwen2", "qwen3", "gemma3")

# llama.cpp fixes these for gemma3: five local (sliding-window) layers, then
# one global, and a rope base of 10000 on the local layers.
GEMMA3_SWA_PERIOD = 6
GEMMA3_LOCAL_ROPE_BASE = 10000.0


@dataclass(frozen=True)
class LayerSettings:
    rope_base: float
    rope_freq_scale: float
    window: int  # 0 = global attention


@dataclass(frozen=True)
class ArchConfig:
    arch: str
    n_vocab: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim_k: int
    head_dim_v: int
    n_ff: int
    n_rot: int
    n_ctx_train: int
    rms_eps: float
    rope_style: str            # "normal" (llama) or "neox"
    activation: str            # "silu" or "gelu_tanh"
    attn_scale: float
    attn_softcap: float        # 0 = none
    final_softcap: float       # 0 = none
    embed_scale: float         # multiplies token embeddings (gemma: sqrt(n_embd))
    layers: tuple[LayerSettings, ...] = field(repr=False)

    def block_config(self) -> dict[str, Any]:
        """The dict the native Stage takes."""
        return {
            "n_embd": self.n_embd, "n_head": self.n_head, "n_head_kv": self.n_head_kv,
            "head_dim_k": self.head_dim_k, "head_dim_v": self.head_dim_v, "n_ff": self.n_ff,
            "n_rot": self.n_rot, "rms_eps": self.rms_eps, "attn_scale": self.attn_scale,
            "attn_softcap": self.attn_softcap, "rope_style": self.rope_style, "activation": self.activation,
        }


def _get(meta: dict, arch: str, key: str, default: Any = None) -> Any:
    value = meta.get(f"{arch}.{key}", default)
    if value is None:
        raise ValueError(f"GGUF metadata lacks {arch}.{key}, which the {arch} architecture needs")
    return value


def arch_config(meta: dict, n_vocab: int) -> ArchConfig:
    """ArchConfig of a GGUF file's metadata; ValueError naming an unsupported architecture."""
    arch = meta.get("general.architecture")
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"unsupported architecture {arch!r}; hetinfer runs: {', '.join(SUPPORTED_ARCHS)}")
    n_embd = int(_get(meta, arch, "embedding_length"))
    n_head = int(_get(meta, arch, "attention.head_count"))
    n_head_kv = int(_get(meta, arch, "attention.head_count_kv", n_head))
    head_dim_k = int(_get(meta, arch, "attention.key_length", n_embd // n_head))
    head_dim_v = int(_get(meta, arch, "attention.value_length", head_dim_k))
    n_layer = int(_get(meta, arch, "block_count"))
    rope_base = float(_get(meta, arch, "rope.freq_base", 10000.0))
    rope_scale = 1.0 / float(meta.get(f"{arch}.rope.scaling.factor", 1.0) or 1.0)
    gemma = arch == "gemma3"
    window = int(_get(meta, arch, "attention.sliding_window", 0)) if gemma else 0
    layers = tuple(
        LayerSettings(GEMMA3_LOCAL_ROPE_BASE, 1.0, window)
        if gemma and window > 0 and il % GEMMA3_SWA_PERIOD < GEMMA3_SWA_PERIOD - 1
        else LayerSettings(rope_base, rope_scale, 0)
        for il in range(n_layer)
    )
    return ArchConfig(
        arch=arch,
        n_vocab=n_vocab,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_head_kv=n_head_kv,
        head_dim_k=head_dim_k,
        head_dim_v=head_dim_v,
        n_ff=int(_get(meta, arch, "feed_forward_length")),
        n_rot=int(meta.get(f"{arch}.rope.dimension_count", head_dim_k)),
        n_ctx_train=int(_get(meta, arch, "context_length", 4096)),
        rms_eps=float(_get(meta, arch, "attention.layer_norm_rms_epsilon", 1e-6)),
        rope_style="normal" if arch == "llama" else "neox",
        activation="gelu_tanh" if gemma else "silu",
        attn_scale=1.0 / math.sqrt(head_dim_k),
        attn_softcap=float(meta.get(f"{arch}.attn_logit_softcapping", 0.0) or 0.0),
        final_softcap=float(meta.get(f"{arch}.final_logit_softcapping", 0.0) or 0.0),
        embed_scale=math.sqrt(n_embd) if gemma else 1.0,
        layers=layers,
    )
