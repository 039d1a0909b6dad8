"""Which GGUF type each tensor of a test model is stored in.

A plain type name ("Q8_0", "Q4_K", ...) stores every matrix in that type. A
llama.cpp mix name ("Q4_K_M", ...) chooses per tensor the way llama.cpp's
``llama_tensor_get_type`` does (src/llama-quant.cpp) for dense models without
an importance matrix: a base K type, more bits for attn_v / ffn_down in the
layers that matter most, Q6_K for the output matrix. Either way a matrix whose
rows are not a whole number of blocks falls back to a type whose blocks fit,
as llama.cpp does, so a real Q4_K_M file holds Q4_K, Q5_0, Q6_K, Q8_0 and F32.
Vectors (norms, biases) are always F32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType, MODEL_TENSOR

Q = GGMLQuantizationType

PLAIN_TYPES: tuple[str, ...] = ("F32", "F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0",
                                "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K")

# general.file_type of a file that is all one type. K types have no "all Q4_K"
# file type; the _S mixes are the closest (llama.cpp's --pure keeps the mix's id).
_PLAIN_FILE_TYPES: dict[str, LlamaFileType] = {
    "F32": LlamaFileType.ALL_F32, "F16": LlamaFileType.MOSTLY_F16, "BF16": LlamaFileType.MOSTLY_BF16,
    "Q4_0": LlamaFileType.MOSTLY_Q4_0, "Q4_1": LlamaFileType.MOSTLY_Q4_1,
    "Q5_0": LlamaFileType.MOSTLY_Q5_0, "Q5_1": LlamaFileType.MOSTLY_Q5_1, "Q8_0": LlamaFileType.MOSTLY_Q8_0,
    "Q2_K": LlamaFileType.MOSTLY_Q2_K, "Q3_K": LlamaFileType.MOSTLY_Q3_K_S,
    "Q4_K": LlamaFileType.MOSTLY_Q4_K_S, "Q5_K": LlamaFileType.MOSTLY_Q5_K_S, "Q6_K": LlamaFileType.MOSTLY_Q6_K,
}

# When a type's block does not divide a row: llama.cpp's tensor_type_fallback.
# The legacy types have no fallback there (it aborts); here they go to F16.
_FALLBACK: dict[Q, Q] = {Q.Q2_K: Q.Q4_0, Q.Q3_K: Q.Q4_0, Q.Q4_K: Q.Q5_0, Q.Q5_K: Q.Q5_1, Q.Q6_K: Q.Q8_0}

# A rule maps (layer, n_layer) to a type, or None to keep the mix's base type.
Rule = Callable[[int, int], "Q | None"]


def _more_bits(i: int, n: int) -> bool:
    """llama.cpp's use_more_bits: the first and last eighth of the layers and every third between."""
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def _when(condition: Callable[[int, int], bool], qtype: Q) -> Rule:
    return lambda i, n: qtype if condition(i, n) else None


def _always(qtype: Q) -> Rule:
    return lambda i, n: qtype


@dataclass(frozen=True)
class _Mix:
    base: Q
    rules: dict[MODEL_TENSOR, Rule] = field(default_factory=dict)


_MIXES: dict[str, _Mix] = {
    "Q3_K_S": _Mix(Q.Q3_K),
    "Q3_K_M": _Mix(Q.Q3_K, {
        MODEL_TENSOR.ATTN_V: lambda i, n: Q.Q5_K if i < 2 else Q.Q4_K,
        MODEL_TENSOR.FFN_DOWN: lambda i, n: Q.Q5_K if i < n // 16 else Q.Q4_K,
        MODEL_TENSOR.ATTN_OUT: _always(Q.Q4_K)}),
    "Q3_K_L": _Mix(Q.Q3_K, {
        MODEL_TENSOR.ATTN_V: _always(Q.Q5_K),
        MODEL_TENSOR.FFN_DOWN: _always(Q.Q5_K),
        MODEL_TENSOR.ATTN_OUT: _always(Q.Q5_K)}),
    "Q4_K_S": _Mix(Q.Q4_K, {
        MODEL_TENSOR.ATTN_V: _when(lambda i, n: i < 4, Q.Q5_K),
        MODEL_TENSOR.FFN_DOWN: _when(lambda i, n: i < n // 8, Q.Q5_K)}),
    "Q4_K_M": _Mix(Q.Q4_K, {
        MODEL_TENSOR.ATTN_V: _when(_more_bits, Q.Q6_K),
        MODEL_TENSOR.FFN_DOWN: _when(_more_bits, Q.Q6_K)}),
    "Q5_K_S": _Mix(Q.Q5_K),
    "Q5_K_M": _Mix(Q.Q5_K, {
        MODEL_TENSOR.ATTN_V: _when(_more_bits, Q.Q6_K),
        MODEL_TENSOR.FFN_DOWN: _when(_more_bits, Q.Q6_K)}),
}

SUPPORTED_QUANTS: tuple[str, ...] = PLAIN_TYPES + tuple(_MIXES)


@dataclass(frozen=True)
class QuantPlan:
    """The storage choice for a whole file, from a quant name."""

    name: str
    file_type: LlamaFileType
    mix: _Mix | None    # None: every matrix in ``plain``
    plain: Q | None

    def matrix_type(self, kind: MODEL_TENSOR, layer: int | None, n_layer: int,
                    n_cols: int, tied: bool) -> Q:
        """Type of a matrix of ``kind`` with rows of ``n_cols`` values.

        ``layer`` is the block index (None outside blocks); ``tied`` says the
        token embedding doubles as the output matrix, which llama.cpp then
        quantises like the output.
        """
        wanted = self.plain if self.mix is None else _mix_type(self.mix, kind, layer, n_layer, n_cols, tied)
        return _fitting(wanted, n_cols)


def quant_plan(quant: str) -> QuantPlan:
    """The plan for ``quant``; ValueError naming the supported names otherwise."""
    name = quant.upper() if isinstance(quant, str) else quant
    if name in _MIXES:
        return QuantPlan(name, LlamaFileType[f"MOSTLY_{name}"], _MIXES[name], None)
    if name in PLAIN_TYPES:
        return QuantPlan(name, _PLAIN_FILE_TYPES[name], None, Q[name])
    raise ValueError(f"unknown quant {quant!r}; supported: {', '.join(SUPPORTED_QUANTS)}")


def _mix_type(mix: _Mix, kind: MODEL_TENSOR, layer: int | None, n_layer: int, n_cols: int, tied: bool) -> Q:
    if kind == MODEL_TENSOR.OUTPUT or (tied and kind == MODEL_TENSOR.TOKEN_EMBD):
        # llama.cpp tests the base type's block here, before the general fallback
        return Q.Q8_0 if n_cols % _block(mix.base) else Q.Q6_K
    rule = mix.rules.get(kind)
    chosen = rule(layer, n_layer) if rule is not None else None
    return mix.base if chosen is None else chosen


def _fitting(qtype: Q, n_cols: int) -> Q:
    """``qtype`` if its blocks divide a row, else llama.cpp's fallback, else F16."""
    if n_cols % _block(qtype) == 0:
        return qtype
    fallback = _FALLBACK.get(qtype, Q.F16)
    return fallback if n_cols % _block(fallback) == 0 else Q.F16


def _block(qtype: Q) -> int:
    return GGML_QUANT_SIZES[qtype][0]
