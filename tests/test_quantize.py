"""Quantisation of every type.

- 32-value block types and F16/BF16: the bytes equal gguf.quants.quantize's.
- K types (no quantiser in gguf.quants): decoded values within a stated RMSE
  of the input, for Gaussian and heavy-tailed data; the bounds sit just above
  what llama.cpp's own K quantisers reach on Gaussian data.
"""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType
from gguf.quants import quantize as gguf_quantize

import hetinfer
from hetinfer.quants import dequantize_bytes, quantize

GGUF_QUANTISABLE = ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"]
# RMSE / std of the input for Gaussian data.
K_RMSE_BOUND = {"Q2_K": 0.30, "Q3_K": 0.17, "Q4_K": 0.085, "Q5_K": 0.043, "Q6_K": 0.021}


def relative_rmse(t: str, x: np.ndarray) -> float:
    y = dequantize_bytes(quantize(x, t), t, x.shape)
    return float(np.sqrt(np.mean((y.astype(np.float64) - x) ** 2)) / np.std(x))


@pytest.mark.parametrize("t", GGUF_QUANTISABLE)
def test_bytes_equal_gguf(t, rng):
    qt = GGMLQuantizationType[t]
    x = rng.standard_normal((64, 256)).astype(np.float32) * rng.uniform(0.01, 100.0, (64, 1)).astype(np.float32)
    x[0, :32] = 0.0                   # an all-zero block
    x[1, :32] = 3.0                   # a constant block
    x[2, :64] = rng.standard_normal(64).astype(np.float32) * 1e-6  # tiny values
    want = np.asarray(gguf_quantize(x, qt)).view(np.uint8).reshape(64, -1)
    np.testing.assert_array_equal(quantize(x, t), want)


@pytest.mark.parametrize("t", sorted(K_RMSE_BOUND))
def test_k_types_rmse(t, rng):
    gauss = rng.standard_normal((64, 1024)).astype(np.float32)
    assert relative_rmse(t, gauss) < K_RMSE_BOUND[t]
    heavy = rng.standard_t(3, (64, 1024)).astype(np.float32)
    assert relative_rmse(t, heavy) < 1.5 * K_RMSE_BOUND[t]


@pytest.mark.parametrize("t", sorted(K_RMSE_BOUND))
def test_k_types_degenerate_blocks(t, rng):
    x = np.zeros((4, 256), np.float32)
    x[1] = 5.0
    x[2] = rng.standard_normal(256).astype(np.float32) * 1e-7
    x[3] = rng.standard_normal(256).astype(np.float32) * 1e4
    y = dequantize_bytes(quantize(x, t), t, x.shape)
    assert np.isfinite(y).all()
    np.testing.assert_array_equal(y[0], 0.0)
    np.testing.assert_allclose(y[1], 5.0, rtol=0.05)
    assert np.sqrt(np.mean((y[3] - x[3]) ** 2)) < 2 * K_RMSE_BOUND[t] * np.std(x[3])


@pytest.mark.parametrize("t", [t.name for t in hetinfer.SUPPORTED_TYPES])
def test_deterministic_and_shaped(t, rng):
    x = rng.standard_normal((3, 512)).astype(np.float32)
    a, b = quantize(x, t), quantize(x.copy(), t)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, hetinfer.quants.row_bytes(t, 512)) and a.dtype == np.uint8


def test_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 256"):
        quantize(np.zeros((2, 100), np.float32), "Q4_K")
    with pytest.raises(ValueError, match="unsupported tensor type 'Q7_0'"):
        quantize(np.zeros((1, 32), np.float32), "Q7_0")
