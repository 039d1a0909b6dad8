"""The architectures a test model can have, and the checked shape of one."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from gguf import MODEL_ARCH, MODEL_ARCH_NAMES


@dataclass(frozen=True)
class ArchTraits:
    """What one architecture's GGUF holds beyond the common llama layout (defaults as the real models)."""

    gguf_arch: MODEL_ARCH
    rope_theta: float
    rms_eps: float
    tie_embeddings: bool
    tokenizers: dict[str, str] = field(hash=False)  # tokenizer kind -> vocab style; first is the default
    qkv_bias: bool = False          # attn_q/k/v.bias (qwen2)
    qk_norm: bool = False           # attn_q_norm/attn_k_norm over head_dim (qwen3, gemma3)
    post_norms: bool = False        # post_attention_norm, post_ffw_norm (gemma3)
    sliding_window: bool = False    # gemma3: llama.cpp makes every 6th layer global, the rest local
    wide_heads: bool = False        # head_dim defaults to 2 * n_embd / n_head; key_length always written
    llama_keys: bool = False        # rope.dimension_count and vocab_size, as convert_hf_to_gguf writes for llama

    @property
    def name(self) -> str:
        return MODEL_ARCH_NAMES[self.gguf_arch]


ARCHS: dict[str, ArchTraits] = {
    "llama": ArchTraits(MODEL_ARCH.LLAMA, rope_theta=10000.0, rms_eps=1e-5, tie_embeddings=False,
                        tokenizers={"spm": "llama-spm", "bpe": "llama3-bpe"}, llama_keys=True),
    "qwen2": ArchTraits(MODEL_ARCH.QWEN2, rope_theta=1e6, rms_eps=1e-6, tie_embeddings=False,
                        tokenizers={"bpe": "qwen-bpe"}, qkv_bias=True),
    "qwen3": ArchTraits(MODEL_ARCH.QWEN3, rope_theta=1e6, rms_eps=1e-6, tie_embeddings=False,
                        tokenizers={"bpe": "qwen-bpe"}, qk_norm=True, wide_heads=True),
    # rope_theta is the global layers' base; llama.cpp hard-codes 10000 for the local ones
    "gemma3": ArchTraits(MODEL_ARCH.GEMMA3, rope_theta=1e6, rms_eps=1e-6, tie_embeddings=True,
                         tokenizers={"spm": "gemma-spm"}, qk_norm=True, post_norms=True,
                         sliding_window=True, wide_heads=True),
}

# Small enough that a whole test model is written and read in well under a second.
# n_ff is not a multiple of 256 so that, as in real Q4_K_M files (Gemma 3 270M,
# Qwen2.5 0.5B), ffn_down falls back from K types to Q5_0 / Q8_0.
_DEFAULTS: dict[str, object] = {
    "n_embd": 256, "n_layer": 2, "n_head": 4, "n_head_kv": 2, "head_dim": None, "n_ff": 640,
    "n_ctx_train": 2048, "rope_theta": None, "rms_eps": None, "sliding_window": None,
    "tie_embeddings": None, "n_vocab": 512, "tokenizer": None,
}
DEFAULT_SLIDING_WINDOW = 128  # shorter than n_ctx_train so tests reach past it


@dataclass(frozen=True)
class ModelSpec:
    arch: str
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    head_dim: int
    n_ff: int
    n_ctx_train: int
    rope_theta: float
    rms_eps: float
    sliding_window: int | None
    tie_embeddings: bool
    n_vocab: int
    tokenizer: str

    @property
    def traits(self) -> ArchTraits:
        return ARCHS[self.arch]

    @property
    def vocab_style(self) -> str:
        return self.traits.tokenizers[self.tokenizer]

    @property
    def writes_head_dim(self) -> bool:
        """key_length/value_length are written when llama.cpp's default (n_embd / n_head) is wrong."""
        return self.traits.wide_heads or self.head_dim * self.n_head != self.n_embd


def model_spec(arch: str, **shape: object) -> ModelSpec:
    """Check ``arch`` and the shape keywords, fill in the defaults; ValueError naming a bad argument."""
    traits = _traits(arch)
    unknown = sorted(set(shape) - set(_DEFAULTS))
    if unknown:
        raise TypeError(f"unexpected keyword argument(s) {', '.join(unknown)}; "
                        f"shape keywords are {', '.join(_DEFAULTS)}")
    s = {**_DEFAULTS, **shape}
    ints = {name: _positive_int(name, s[name])
            for name in ("n_embd", "n_layer", "n_head", "n_head_kv", "n_ff", "n_ctx_train", "n_vocab")}
    if ints["n_head"] % ints["n_head_kv"]:
        raise ValueError(f"n_head_kv={ints['n_head_kv']} must divide n_head={ints['n_head']}")
    return ModelSpec(
        arch=arch, **ints,
        head_dim=_head_dim(traits, s["head_dim"], ints["n_embd"], ints["n_head"]),
        rope_theta=_positive_float("rope_theta", traits.rope_theta if s["rope_theta"] is None else s["rope_theta"]),
        rms_eps=_positive_float("rms_eps", traits.rms_eps if s["rms_eps"] is None else s["rms_eps"]),
        sliding_window=_sliding_window(traits, s["sliding_window"]),
        tie_embeddings=_bool("tie_embeddings", traits.tie_embeddings if s["tie_embeddings"] is None
                             else s["tie_embeddings"]),
        tokenizer=_tokenizer(arch, traits, s["tokenizer"]),
    )


def check_seed(seed: object) -> int:
    """``seed`` as numpy's generators take it: a non-negative integer."""
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _traits(arch: str) -> ArchTraits:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")
    return ARCHS[arch]


def _head_dim(traits: ArchTraits, head_dim: object, n_embd: int, n_head: int) -> int:
    if head_dim is None:
        if n_embd % n_head:
            raise ValueError(f"n_head={n_head} does not divide n_embd={n_embd}; pass head_dim")
        head_dim = n_embd // n_head * (2 if traits.wide_heads else 1)
    value = _positive_int("head_dim", head_dim)
    if value % 2:
        raise ValueError(f"head_dim={value} must be even (RoPE rotates pairs of values)")
    return value


def _sliding_window(traits: ArchTraits, window: object) -> int | None:
    if not traits.sliding_window:
        if window is not None:
            raise ValueError(f"sliding_window applies only to gemma3, not {traits.name}")
        return None
    return _positive_int("sliding_window", DEFAULT_SLIDING_WINDOW if window is None else window)


def _tokenizer(arch: str, traits: ArchTraits, tokenizer: object) -> str:
    if tokenizer is None:
        return next(iter(traits.tokenizers))
    if tokenizer not in traits.tokenizers:
        raise ValueError(f"tokenizer={tokenizer!r} is not available for {arch}; "
                         f"choose from {', '.join(map(repr, traits.tokenizers))}")
    return tokenizer


def _positive_int(name: str, value: object) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _positive_float(name: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value
