"""Every op of the device op set (csrc/device/device.h) on every available
device (the `device` fixture: cpu with each kernel path, sycl:N, cuda:N)
against numpy float64 references, fresh random inputs each run.

Tolerances (relative error = ||y - ref|| / ||ref||):
- rms_norm, rope, gated activations, softcap: float32 arithmetic, < 1e-5.
- add, add_bias: exact float32.
- get_rows: bit-identical to dequantisation (times scale); set_rows: the bytes
  of the CPU quantisers, on every device.
- matmul: NMSE as in tests/test_matmul.py. Float weights < 1e-10. Quantised
  weights: every device rounds activations to the CPU's 8-bit blocks (bound
  5e-3, see test_matmul.py), and a device's result is the CPU's up to the order
  of float sums: ||y - y_cpu|| / ||y_cpu|| < 1e-5 (measured <= 3.2e-7 on SYCL).
- flash attention with f32/f16 K: float32 scores, < 1e-5 (f16 rounding of the
  cache is part of the reference, which uses the dequantised cache).
- flash attention with q8_0/q4_0 K: the CPU rounds queries to 8-bit blocks for
  the integer dot products (as in matmul): measured ~4e-3, bound 3e-2.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetinfer
from hetinfer import _core
from hetinfer.quants import dequantize_bytes, qtype, quantize
from hetinfer.testing.samples import random_weights
from attention_reference import attention_over, long_cache_decode


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y.astype(np.float64) - ref) / np.linalg.norm(ref))


@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm(rng, device, with_weight):
    x = rng.standard_normal((37, 640)).astype(np.float32) * 3
    w = rng.standard_normal(640).astype(np.float32) if with_weight else None
    x64 = x.astype(np.float64)
    ref = x64 / np.sqrt(np.mean(x64 ** 2, axis=1, keepdims=True) + 1e-6) * (1.0 if w is None else w)
    assert rel_err(_core.rms_norm(x, w, 1e-6, device=device), ref) < 1e-5


@pytest.mark.parametrize("dim", [640, 2048])  # one warp a row on a GPU; a block a row
def test_add_rms_norm(rng, device, dim):
    """A residual add and the norm that reads it, as one op: the sum and the
    norm bit for bit what add then rms_norm give on the device."""
    x = rng.standard_normal((5, dim)).astype(np.float32) * 3
    delta = rng.standard_normal((5, dim)).astype(np.float32)
    w = rng.standard_normal(dim).astype(np.float32)
    total, y = _core.add_rms_norm(x, delta, w, 1e-6, device=device)
    np.testing.assert_array_equal(total, x + delta)
    separate = _core.rms_norm(_core.add(x, delta, device=device), w, 1e-6, device=device)
    np.testing.assert_array_equal(y.view(np.uint32), separate.view(np.uint32))
    t64 = total.astype(np.float64)
    assert rel_err(y, t64 / np.sqrt(np.mean(t64 ** 2, axis=1, keepdims=True) + 1e-6) * w) < 1e-5


def rope_reference(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, freq_scale: float, style: str):
    y = x.astype(np.float64).copy()
    half = n_rot // 2
    inv = base ** (-2.0 * np.arange(half) / n_rot)
    ang = (pos[:, None].astype(np.float64) * freq_scale) * inv[None, :]  # (tokens, half)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a = np.arange(half) if style == "neox" else 2 * np.arange(half)
    b = a + half if style == "neox" else a + 1
    x0, x1 = y[..., a].copy(), y[..., b].copy()
    y[..., a] = x0 * cos - x1 * sin
    y[..., b] = x0 * sin + x1 * cos
    return y


@pytest.mark.parametrize("style", ["normal", "neox"])
@pytest.mark.parametrize("n_rot", [64, 32])  # full and partial rotation
def test_rope(rng, device, style, n_rot):
    x = rng.standard_normal((9, 4, 64)).astype(np.float32)
    pos = rng.integers(0, 4096, 9).astype(np.int32)
    y = _core.rope(x, pos, n_rot, 10000.0, 0.5, style, device=device)
    assert rel_err(y, rope_reference(x, pos, n_rot, 10000.0, 0.5, style)) < 1e-5
    np.testing.assert_array_equal(y[..., n_rot:], x[..., n_rot:])
    k = rng.standard_normal((9, 2, 64)).astype(np.float32)  # q and k in one op: each as alone, bit for bit
    q_pair, k_pair = _core.rope_pair(x, k, pos, n_rot, 10000.0, 0.5, style, device=device)
    np.testing.assert_array_equal(q_pair.view(np.uint32), y.view(np.uint32))
    np.testing.assert_array_equal(k_pair.view(np.uint32),
                                  _core.rope(k, pos, n_rot, 10000.0, 0.5, style, device=device).view(np.uint32))


def test_gated_activations(rng, device):
    g = rng.standard_normal(10000).astype(np.float32) * 4
    u = rng.standard_normal(10000).astype(np.float32)
    g64, u64 = g.astype(np.float64), u.astype(np.float64)
    silu = g64 / (1 + np.exp(-g64)) * u64
    gelu = 0.5 * g64 * (1 + np.tanh(np.sqrt(2 / np.pi) * (g64 + 0.044715 * g64 ** 3))) * u64
    assert rel_err(_core.gated_activation(g, u, "silu", device=device), silu) < 1e-5
    assert rel_err(_core.gated_activation(g, u, "gelu_tanh", device=device), gelu) < 1e-5


@pytest.mark.parametrize("name", ["Q4_0", "Q6_K", "F16"])  # 32- and 256-value activation blocks; float weights
@pytest.mark.parametrize("act", ["silu", "gelu_tanh"])
@pytest.mark.parametrize("n", [3, 20])  # the matvec; the tiled matmul on a GPU
def test_gated_matmul(rng, device, name, act, n):
    """The down projection with its input formed on the way: the gated values
    and y bit for bit what gated_activation then matmul give on the device."""
    t, k, rows = qtype(name), 512, 40
    gate = rng.standard_normal((n, k)).astype(np.float32) * 3
    up = rng.standard_normal((n, k)).astype(np.float32)
    w = random_weights(t, rows, k, rng)
    gated, y = _core.gated_matmul(gate, up, act, int(t), w, rows, device=device)
    separate = _core.gated_activation(gate, up, act, device=device)
    np.testing.assert_array_equal(gated.view(np.uint32), separate.view(np.uint32))
    alone = _core.matmul(int(t), w, rows, k, separate, device=device)
    np.testing.assert_array_equal(y.view(np.uint32), alone.view(np.uint32))


def test_softcap(rng, device):
    x = rng.standard_normal(1000).astype(np.float32) * 100
    assert rel_err(_core.softcap(x, 30.0, device=device), 30.0 * np.tanh(x.astype(np.float64) / 30.0)) < 1e-5


def test_add_and_bias(rng, device):
    x = rng.standard_normal((37, 300)).astype(np.float32)
    y = rng.standard_normal((37, 300)).astype(np.float32)
    b = rng.standard_normal(300).astype(np.float32)
    np.testing.assert_array_equal(_core.add(x, y, device=device), x + y)
    np.testing.assert_array_equal(_core.add_bias(x, b, device=device), x + b)


def nmse(y: np.ndarray, ref: np.ndarray, x: np.ndarray, w: np.ndarray) -> float:
    expected_square = np.sum(x.astype(np.float64) ** 2, axis=1)[:, None] * np.sum(w ** 2, axis=1)[None, :] / x.shape[1]
    return float(np.sum((y - ref) ** 2) / np.sum(expected_square))


@pytest.mark.parametrize("t", [pytest.param(t, id=t.name) for t in hetinfer.SUPPORTED_TYPES])
@pytest.mark.parametrize("n", [1, 7, 40])  # decode, a few sequences, prefill (tiled on GPUs)
def test_matmul(rng, device, t, n):
    rows, k = 67, (512 if t.name not in ("F32", "F16", "BF16") else 301)  # float types: a partial last chunk
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    y = _core.matmul(int(t), w, rows, k, x, device=device)
    w_float = dequantize_bytes(w, t, (rows, k)).astype(np.float64)
    float_weights = t.name in ("F32", "F16", "BF16")
    assert nmse(y, x.astype(np.float64) @ w_float.T, x, w_float) < (1e-10 if float_weights else 5e-3)
    assert rel_err(y, _core.matmul(int(t), w, rows, k, x)) < 1e-5


@pytest.mark.parametrize("n", [1, 12, 40])  # decode; two matvec passes on a GPU; prefill (tiled)
def test_matmuls_of_one_input(rng, device, n):
    """Products of one input (q, k and v; gate and up) round it once per block
    kind and may run as one launch: each y is matmul's own, bit for bit,
    whatever the mix of types, empty products included."""
    k = 512
    mix = [("Q4_0", 67), ("Q4_K", 5), ("F16", 9), ("Q8_0", 0), ("Q4_0", 12), ("Q4_0", 3), ("Q4_0", 30),
           ("Q6_K", 33)]
    products = [(int(qtype(name)), random_weights(qtype(name), rows, k, rng), rows) for name, rows in mix]
    x = rng.standard_normal((n, k)).astype(np.float32)
    ys = _core.matmuls(x, products, device=device)
    assert [y.shape for y in ys] == [(n, rows) for _, rows in mix]
    for (t, w, rows), y in zip(products, ys):
        np.testing.assert_array_equal(y.view(np.uint32), _core.matmul(t, w, rows, k, x, device=device).view(np.uint32))
    with pytest.raises(ValueError, match="expected"):
        _core.matmuls(x, [(int(qtype("Q4_0")), products[0][1][:-1], 67)], device=device)


@pytest.mark.parametrize("t", [pytest.param(t, id=t.name) for t in hetinfer.SUPPORTED_TYPES])
def test_get_rows(rng, device, t):
    rows, cols = 20, 512
    table = random_weights(t, rows, cols, rng)
    ids = rng.integers(0, rows, 9).astype(np.int32)
    full = dequantize_bytes(table, t, (rows, cols))
    y = _core.get_rows(int(t), table, cols, ids, device=device)
    np.testing.assert_array_equal(y.view(np.uint32), full[ids].view(np.uint32))
    np.testing.assert_array_equal(_core.get_rows(int(t), table, cols, ids, 0.37, device=device),
                                  full[ids] * np.float32(0.37))


@pytest.mark.parametrize("name", ["F32", "F16", "Q8_0", "Q4_0"])
def test_get_rows_of_a_cache(rng, device, name):
    """A KV cache keeps set_rows' layout (whole blocks) on every device, while
    weights may be held as planar rows: get_rows reads each as it is."""
    t = qtype(name)
    rows, cols = 20, 256
    table = random_weights(t, rows, cols, rng)
    ids = rng.integers(0, rows, 9).astype(np.int32)
    y = _core.get_rows(int(t), table, cols, ids, device=device, cache=True)
    np.testing.assert_array_equal(y.view(np.uint32), dequantize_bytes(table, t, (rows, cols))[ids].view(np.uint32))


@pytest.mark.parametrize("name", ["Q4_0", "Q8_0", "Q4_K", "Q6_K", "Q5_K"])
def test_cuda_weight_layouts_agree(rng, cuda0, monkeypatch, name):
    """A CUDA device holds weights as planar rows, read with 16-byte loads at
    widths of 8 blocks (kernels/cuda/chunk_words.cuh), or as the file's blocks
    (HETINFER_CUDA_WEIGHTS=blocks): the matvec, the tiled matmul and get_rows
    give the same bits either way (the same integer sums and float ops)."""
    from hetinfer.devices import make_device

    t = qtype(name)
    rows, k = 70, 8 * 256  # Planar16 for every type
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((24, k)).astype(np.float32)
    ids = rng.integers(0, rows, 9).astype(np.int32)
    results = {}
    for layout in ("planar", "blocks"):
        monkeypatch.setenv("HETINFER_CUDA_WEIGHTS", layout)
        dev = make_device(cuda0)
        results[layout] = [_core.matmul(int(t), w, rows, k, x[:n], device=dev) for n in (1, 8, 24)]
        results[layout].append(_core.get_rows(int(t), w, k, ids, device=dev))
    for planar, blocks in zip(results["planar"], results["blocks"]):
        np.testing.assert_array_equal(planar.view(np.uint32), blocks.view(np.uint32))
    assert rel_err(results["planar"][0], _core.matmul(int(t), w, rows, k, x[:1])) < 1e-5
    monkeypatch.setenv("HETINFER_CUDA_WEIGHTS", "rows")
    with pytest.raises(RuntimeError, match="HETINFER_CUDA_WEIGHTS=rows: expected planar"):
        make_device(cuda0)


@pytest.mark.parametrize("name", ["F32", "F16", "Q8_0", "Q4_0"])
def test_set_rows(rng, device, name):
    rows, cols = 12, 256
    table = np.zeros(rows * len(quantize(np.zeros((1, cols), np.float32), name).reshape(-1)), np.uint8)
    ids = rng.choice(rows, 5, replace=False).astype(np.int32)
    src = (rng.standard_normal((5, cols)) * rng.uniform(0.01, 100)).astype(np.float32)
    out = _core.set_rows(int(qtype(name)), table, cols, ids, src, device=device).reshape(rows, -1)
    np.testing.assert_array_equal(out[ids], quantize(src, name).reshape(5, -1))
    untouched = np.setdiff1d(np.arange(rows), ids)
    np.testing.assert_array_equal(out[untouched], 0)


def test_set_rows_pair(rng, device):
    """A layer's keys (q8_0, 256 wide) and values (f16, 128 wide) written by
    one op: each table as set_rows alone leaves it."""
    rows, ids = 12, rng.choice(12, 5, replace=False).astype(np.int32)
    k_table = rng.integers(0, 256, rows * 8 * 34, dtype=np.uint8)
    v_table = rng.integers(0, 256, rows * 128 * 2, dtype=np.uint8)
    k_src = rng.standard_normal((5, 256)).astype(np.float32)
    v_src = rng.standard_normal((5, 128)).astype(np.float32)
    k_type, v_type = int(qtype("Q8_0")), int(qtype("F16"))
    k_out, v_out = _core.set_rows_pair(k_type, k_table, 256, k_src, v_type, v_table, 128, v_src, ids, device=device)
    np.testing.assert_array_equal(k_out, _core.set_rows(k_type, k_table, 256, ids, k_src, device=device))
    np.testing.assert_array_equal(v_out, _core.set_rows(v_type, v_table, 128, ids, v_src, device=device))


def test_row_ops_reject_bad_ids(device):
    table = np.zeros(4 * 32 * 4, np.uint8)  # F32 (4, 32)
    with pytest.raises(ValueError, match="outside"):
        _core.get_rows(0, table, 32, np.array([4], np.int32), device=device)
    with pytest.raises(ValueError, match="outside"):
        _core.set_rows(0, table, 32, np.array([-1], np.int32), np.zeros((1, 32), np.float32), device=device)


def attention_reference(q, k, v, q_seq, q_pos, cell_seq, cell_pos, window, scale, softcap):
    visible = []
    for t in range(q.shape[0]):
        back = q_pos[t] - cell_pos
        visible.append((cell_seq == q_seq[t]) & (cell_seq >= 0) & (back >= 0) & ((window <= 0) | (back < window)))
    return attention_over(q, k, v, visible, scale, softcap)


def cache(rng, t: str, n_cells: int, n_head_kv: int, d: int):
    x = rng.standard_normal((n_cells, n_head_kv, d)).astype(np.float32)
    raw = quantize(x.reshape(-1, d), t).reshape(-1)
    return raw, dequantize_bytes(raw, t, x.shape).astype(np.float64)


@pytest.mark.parametrize("k_type,v_type", [("F32", "F32"), ("F16", "F16"), ("Q8_0", "Q8_0"), ("Q4_0", "Q4_0"),
                                           ("F16", "Q4_0"), ("Q8_0", "F16")])
@pytest.mark.parametrize("window,softcap", [(0, 0.0), (20, 0.0), (0, 5.0)])
def test_flash_attention(rng, device, k_type, v_type, window, softcap):
    n_cells, n_head, n_head_kv, d_k, d_v = 150, 8, 2, 64, 32
    k_raw, k_ref = cache(rng, k_type, n_cells, n_head_kv, d_k)
    v_raw, v_ref = cache(rng, v_type, n_cells, n_head_kv, d_v)
    # Two sequences interleaved over the cells, some empty cells, queries at various positions.
    cell_seq = rng.integers(0, 2, n_cells).astype(np.int32)
    cell_seq[rng.choice(n_cells, 10, replace=False)] = -1
    cell_pos = np.zeros(n_cells, np.int32)
    for s in (0, 1):
        cell_pos[cell_seq == s] = np.arange(np.sum(cell_seq == s))
    q_seq = np.array([0, 1, 0, 1, 2], np.int32)  # sequence 2 has no cells: zeros
    q_pos = np.array([70, 69, 3, 30, 5], np.int32)
    q = rng.standard_normal((5, n_head, d_k)).astype(np.float32)
    scale = 1.0 / np.sqrt(d_k)
    y = _core.flash_attention(q, k_raw, int(qtype(k_type)), v_raw, int(qtype(v_type)), n_head_kv, d_v,
                              q_seq, q_pos, cell_seq, cell_pos, window, scale, softcap, device=device)
    ref = attention_reference(q, k_ref, v_ref, q_seq, q_pos, cell_seq, cell_pos, window, scale, softcap)
    np.testing.assert_array_equal(y[4], 0.0)
    bound = 1e-5 if k_type in ("F32", "F16") else 3e-2
    assert rel_err(y, ref) < bound


@pytest.mark.parametrize("k_type,v_type", [("F16", "F16"), ("Q8_0", "Q4_0")])
def test_flash_attention_long_cache(rng, device, k_type, v_type):
    """Decode of 3 sequences in a 1300-cell cache (1100, 5 and no cells): on
    CUDA a split step (over 512 cells), its parts merged; the same bounds."""
    n_cells, n_head, n_head_kv, d = 1300, 4, 2, 64
    k_raw, k_ref = cache(rng, k_type, n_cells, n_head_kv, d)
    v_raw, v_ref = cache(rng, v_type, n_cells, n_head_kv, d)
    cell_seq, cell_pos, q_seq, q_pos = long_cache_decode(rng, n_cells)
    q = rng.standard_normal((3, n_head, d)).astype(np.float32)
    y = _core.flash_attention(q, k_raw, int(qtype(k_type)), v_raw, int(qtype(v_type)), n_head_kv, d,
                              q_seq, q_pos, cell_seq, cell_pos, 0, 0.125, 0.0, device=device)
    ref = attention_reference(q, k_ref, v_ref, q_seq, q_pos, cell_seq, cell_pos, 0, 0.125, 0.0)
    np.testing.assert_array_equal(y[2], 0.0)
    assert rel_err(y, ref) < (1e-5 if k_type == "F16" else 3e-2)


def test_flash_attention_rejects_bad_shapes():
    q = np.zeros((1, 3, 32), np.float32)
    k = np.zeros(2 * 2 * 32 * 2, np.uint8)
    ids = np.zeros(2, np.int32)
    with pytest.raises(ValueError, match="multiple of n_head_kv"):
        _core.flash_attention(q, k, 1, k, 1, 2, 32, ids[:1], ids[:1], ids, ids, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="expected 256 bytes"):
        _core.flash_attention(q, k[:-2], 1, k, 1, 2, 32, ids[:1], ids[:1], ids, ids, 0, 1.0, 0.0)
    with pytest.raises(ValueError, match="not one of f32, f16, q8_0, q4_0"):
        _core.flash_attention(np.zeros((1, 2, 256), np.float32), np.zeros(2 * 2 * 144, np.uint8), 12,
                              np.zeros(2 * 2 * 144, np.uint8), 12, 2, 256, ids[:1], ids[:1], ids, ids, 0, 1.0, 0.0)
