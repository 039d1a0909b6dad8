"""The tensors of a test model: names and shapes as llama.cpp loads them, and their random values."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
from gguf import MODEL_TENSOR, TENSOR_NAMES

from .model_spec import ModelSpec, check_seed, model_spec

T = MODEL_TENSOR


@dataclass(frozen=True)
class TensorSpec:
    name: str
    kind: MODEL_TENSOR
    layer: int | None       # block index; None outside the blocks
    shape: tuple[int, ...]  # numpy order: (n_out, n_in) for matrices, as GGUFWriter takes them

    @property
    def is_matrix(self) -> bool:
        return len(self.shape) == 2


def tensor_layout(spec: ModelSpec) -> list[TensorSpec]:
    """Every tensor of the model, in file order."""
    tensors = [_weight(T.TOKEN_EMBD, None, spec.n_vocab, spec.n_embd)]
    for layer in range(spec.n_layer):
        tensors += _block(spec, layer)
    tensors.append(_weight(T.OUTPUT_NORM, None, spec.n_embd))
    if not spec.tie_embeddings:  # tied: llama.cpp uses token_embd as the output matrix
        tensors.append(_weight(T.OUTPUT, None, spec.n_vocab, spec.n_embd))
    return tensors


def _block(spec: ModelSpec, i: int) -> list[TensorSpec]:
    traits = spec.traits
    embd, ff, head = spec.n_embd, spec.n_ff, spec.head_dim
    q_dim, kv_dim = spec.n_head * head, spec.n_head_kv * head
    tensors = [
        _weight(T.ATTN_NORM, i, embd),
        _weight(T.ATTN_Q, i, q_dim, embd),
        _weight(T.ATTN_K, i, kv_dim, embd),
        _weight(T.ATTN_V, i, kv_dim, embd),
    ]
    if traits.qkv_bias:
        tensors += [_bias(T.ATTN_Q, i, q_dim), _bias(T.ATTN_K, i, kv_dim), _bias(T.ATTN_V, i, kv_dim)]
    if traits.qk_norm:
        tensors += [_weight(T.ATTN_Q_NORM, i, head), _weight(T.ATTN_K_NORM, i, head)]
    tensors.append(_weight(T.ATTN_OUT, i, embd, q_dim))
    if traits.post_norms:
        tensors.append(_weight(T.ATTN_POST_NORM, i, embd))
    tensors += [
        _weight(T.FFN_NORM, i, embd),
        _weight(T.FFN_GATE, i, ff, embd),
        _weight(T.FFN_UP, i, ff, embd),
        _weight(T.FFN_DOWN, i, embd, ff),
    ]
    if traits.post_norms:
        tensors.append(_weight(T.FFN_POST_NORM, i, embd))
    return tensors


def _weight(kind: MODEL_TENSOR, layer: int | None, *shape: int) -> TensorSpec:
    return TensorSpec(_name(kind, layer) + ".weight", kind, layer, shape)


def _bias(kind: MODEL_TENSOR, layer: int, size: int) -> TensorSpec:
    return TensorSpec(_name(kind, layer) + ".bias", kind, layer, (size,))


def _name(kind: MODEL_TENSOR, layer: int | None) -> str:
    return TENSOR_NAMES[kind].format(bid=layer)


def tensor_values(t: TensorSpec, seed: int) -> np.ndarray:
    """float32 values of ``t``, a function of ``seed`` and the tensor's name alone.

    Matrices have std 1/sqrt(n_in), so each projection keeps its input's scale
    and a forward pass stays in range. Norm weights are near 1 for every
    architecture: llama.cpp's converter stores Gemma's norms with the +1 of
    ``x * (1 + w)`` already added, so a GGUF Gemma norm multiplies by w as the
    others do. Biases are small but large enough that dropping one shows.
    """
    rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
    noise = rng.standard_normal(t.shape, dtype=np.float32)
    if t.is_matrix:
        return noise / np.float32(np.sqrt(t.shape[1]))
    if t.name.endswith(".bias"):
        return np.float32(0.1) * noise
    return np.float32(1.0) + np.float32(0.1) * noise


def reference_tensors(arch: str = "llama", *, seed: int = 0, **shape: object) -> dict[str, np.ndarray]:
    """The float32 values ``write_model`` quantises, by tensor name, for the same arguments."""
    spec = model_spec(arch, **shape)
    seed = check_seed(seed)
    return {t.name: tensor_values(t, seed) for t in tensor_layout(spec)}
