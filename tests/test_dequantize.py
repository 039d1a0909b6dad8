"""Dequantisation of every supported type equals gguf.quants.dequantize bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType
from gguf.quants import dequantize as gguf_dequantize

import hetinfer
from hetinfer.quants import dequantize_bytes
from hetinfer.testing.samples import HALF_FIELDS

TYPES = [pytest.param(t, id=t.name) for t in hetinfer.SUPPORTED_TYPES]

# Half-float bit patterns that stress the scale fields: zeros, subnormals,
# the largest finite value, infinities and NaNs of both signs.
EXTREME_HALVES = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7BFF, 0xFBFF,
                           0x7C00, 0xFC00, 0x7E00, 0x7C01, 0xFE01, 0x3C00, 0x1400], dtype=np.uint16)


def reference(raw: np.ndarray, t: GGMLQuantizationType) -> np.ndarray:
    values, nbytes = GGML_QUANT_SIZES[t]
    blocks = raw.reshape(-1, nbytes) if values > 1 else raw
    with np.errstate(all="ignore"):  # NaN and inf scales are part of the test
        return np.asarray(gguf_dequantize(blocks, t), dtype=np.float32).reshape(-1)


def assert_bit_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    diff = np.flatnonzero(got.view(np.uint32) != want.view(np.uint32))
    assert diff.size == 0, f"{diff.size} values differ, first at {diff[0]}: {got[diff[0]]!r} vs {want[diff[0]]!r}"


@pytest.mark.parametrize("t", TYPES)
def test_random_blocks_bit_exact(t, rng):
    values, nbytes = GGML_QUANT_SIZES[t]
    n_blocks = 2048 if values > 1 else 65536
    raw = rng.integers(0, 256, size=n_blocks * nbytes, dtype=np.uint8)
    assert_bit_exact(dequantize_bytes(raw, t, (n_blocks * values,)), reference(raw, t))


@pytest.mark.parametrize("t", [p for p in TYPES if p.values[0].name in HALF_FIELDS])
def test_extreme_and_subnormal_scales_bit_exact(t, rng):
    values, nbytes = GGML_QUANT_SIZES[t]
    n_blocks = len(EXTREME_HALVES) ** 2
    raw = rng.integers(0, 256, size=(n_blocks, nbytes), dtype=np.uint8)
    offsets = HALF_FIELDS[t.name]
    # Every pair of extreme values across the (up to two) scale fields.
    first = np.repeat(EXTREME_HALVES, len(EXTREME_HALVES))
    second = np.tile(EXTREME_HALVES, len(EXTREME_HALVES))
    for field, halves in zip(offsets, (first, second)):
        raw[:, field:field + 2] = halves.view(np.uint8).reshape(-1, 2)
    raw = raw.reshape(-1)
    assert_bit_exact(dequantize_bytes(raw, t, (n_blocks * values,)), reference(raw, t))


@pytest.mark.parametrize("t", [GGMLQuantizationType.F16, GGMLQuantizationType.BF16])
def test_every_16_bit_pattern(t):
    raw = np.arange(65536, dtype=np.uint16).view(np.uint8)
    assert_bit_exact(dequantize_bytes(raw, t, (65536,)), reference(raw, t))


def test_every_tensor_of_real_gemma_file(gemma_path):
    with hetinfer.open_gguf(gemma_path) as f:
        types = {t.type.name for t in f.tensors.values()}
        assert {"Q4_K", "Q5_0", "Q6_K", "Q8_0", "F32"} <= types
        for tensor in f.tensors.values():
            got = tensor.dequantize()
            assert got.shape == tensor.shape, tensor.name
            assert_bit_exact(got.reshape(-1), reference(np.asarray(tensor.data), tensor.type))


def test_dequantize_by_path_and_name(gemma_path):
    got = hetinfer.dequantize(gemma_path, "blk.0.attn_q.weight")
    assert got.dtype == np.float32 and got.shape == (1024, 640)
    with pytest.raises(KeyError, match="no tensor named 'nope'"):
        hetinfer.dequantize(gemma_path, "nope")


def test_wrong_byte_count_is_an_error():
    with pytest.raises(ValueError, match="expected 18 bytes"):
        dequantize_bytes(np.zeros(17, np.uint8), "Q4_0", (32,))
    with pytest.raises(ValueError, match="multiple of 32"):
        dequantize_bytes(np.zeros(18, np.uint8), "Q4_0", (16,))
    with pytest.raises(ValueError, match="unsupported tensor type"):
        dequantize_bytes(np.zeros(18, np.uint8), "IQ2_XXS", (256,))
