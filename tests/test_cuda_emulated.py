"""The CUDA kernels (kernels/cuda/*.cu) run on the CPU through an emulation
of the CUDA execution model, against the CPU backend's device ops.

Why: CI has no GPU. The real CUDA tests are tests/test_ops.py and
tests/test_device_models.py on cuda:N, which skip without one. This file
compiles the same kernel sources with g++ against tests/cuda_emulator (a
CUDA runtime shim, a rewrite of the <<<...>>> launches and __shared__
declarations, and the mma.sync hook in mmq.cu) in a session fixture, then
calls every launcher of kernels/cuda/*.cuh through ctypes on fresh random
inputs and compares with the CPU backend (hetinfer._core ops on a CpuDevice).
Without g++ the tests are skipped with that reason.

Emulated (tests/cuda_emulator/cuda_runtime.h has the details): blocks of
threads, each thread a fibre, so __syncthreads is a real block barrier and
warp shuffles, ballots and mma.sync are warp-synchronous collectives of all
32 lanes (lanes missing or at another call site are reported as errors, as
are deadlocked barriers); __shared__ memory per block, poisoned with 0xff
bytes when the block starts; a random (seeded from the test's rng) order of
threads between synchronisation points; mma.sync.m16n8k16.s8 from the PTX
ISA fragment tables. Not emulated: the memory model and races beyond what the
random order exposes, timing and occupancy, resource limits, out-of-bounds or
misaligned accesses (outputs here carry canary bytes on both sides instead),
nvcc's FMA contraction (the build uses -ffp-contract=off, so only an explicit
fmaf fuses), CUDA's own libm (glibc's expf/tanhf/sincosf/pow instead) and
streams (launches are synchronous). HI_EMU_SANITIZE=1 (see
tests/cuda_emulator/build.py) runs the same tests under ASan and UBSan, which
then also catch out-of-bounds reads.

Tolerances (relative error = ||y - y_cpu|| / ||y_cpu||, as tests/test_ops.py):
- bit-exact: quantize_act's blocks = the CPU's activation blocks
  (csrc/cpu/act_q8.cpp); get_rows values for every type, any scale, every
  bit pattern (raw random tables); set_rows bytes for f32, f16, q8_0, q4_0;
  mmq with quantised weights = the CPU's scalar kernel; add, add_bias.
- 1e-5: mmvq (every type: its sums run in another order than the CPU's),
  mmq with float weights, rms_norm (float sums, the CPU's are double), rope,
  gated activations, softcap.
- attention: 1e-5 against the CPU for f32/f16 K; for q8_0/q4_0 K 3e-2
  against the CPU (which rounds queries to 8-bit blocks; test_ops' bound)
  and 1e-5 against float64 numpy over the dequantised cache (the kernel
  keeps float queries). Queries that see no cell give exact zeros, and the
  output is bit-identical whatever block plan the SM count leads to. A split
  decode step (a cache of more than 512 cells) merges its parts in another
  order than the unsplit kernel sums: within 1e-5 of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os

import numpy as np
import pytest

import hetinfer
from hetinfer import _core
from hetinfer.devices import make_device
from hetinfer.quants import dequantize_bytes, qtype, quantize, row_bytes
from hetinfer.testing.samples import random_weights
from attention_reference import attention_over, long_cache_decode
from cuda_emulator import build as emulator_build

TYPES = [pytest.param(t, id=t.name) for t in hetinfer.SUPPORTED_TYPES]
FLOAT_TYPES = {"F32", "F16", "BF16"}
K_QUANTS = {"Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K"}
PAD = 64  # canary bytes on each side of every buffer a kernel writes
CANARY = 0x5A

V, I32, U32, I64, U64, F32 = (ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32, ctypes.c_int64, ctypes.c_uint64,
                              ctypes.c_float)
SIGNATURES = {  # tests/cuda_emulator/entry.cpp; each returns 0 or 1 (hi_emu_error)
    "hi_emu_quantize_act": [I32, V, I64, I64, V],
    "hi_emu_cpu_quantize_activations": [I32, V, I64, I64, V],
    "hi_emu_quantize_gated_act": [I32, V, V, I32, I64, I64, V],
    "hi_emu_matmul": [U32, V, I64, I64, V, I64, V, V, I32],
    "hi_emu_matmul_group": [I32, V, V, V, I64, V, V, I64, V, I32],
    "hi_emu_mmvq": [U32, V, I64, I64, V, V, I64, V, I32],
    "hi_emu_mmq": [U32, V, I64, I64, V, V, I64, V, I32],
    "hi_emu_get_rows": [U32, V, I64, V, I64, F32, V, I32],
    "hi_emu_set_rows": [U32, V, I64, V, U32, V, I64, V, V, I64],
    "hi_emu_rms_norm": [V, V, V, I64, I64, F32],
    "hi_emu_add_rms_norm": [V, V, V, V, I64, I64, F32],
    "hi_emu_rope": [V, I64, V, I64, V, I64, I64, I64, F32, F32, I32],
    "hi_emu_gated_activation": [V, V, V, I64, I32],
    "hi_emu_add": [V, V, I64],
    "hi_emu_add_bias": [V, V, I64, I64],
    "hi_emu_softcap": [V, I64, F32],
    "hi_emu_attention": [V, I64, I64, U32, V, U32, V, I64, I64, I64, I64, V, V, V, F32, F32, V, V],
    "hi_emu_selftest": [I32, V, V, I32, I32],
}


def rel_err(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.linalg.norm(y.astype(np.float64) - ref) / np.linalg.norm(ref))


def ptr(a: np.ndarray | None):
    if a is None:
        return None
    assert a.flags.c_contiguous
    return ctypes.c_void_p(a.ctypes.data)


def act_values(t) -> int:
    """Values per activation block for weight type t (kernels/common/act_blocks.h)."""
    return 256 if t.name in K_QUANTS else 32


def act_stride(values: int, k: int) -> int:
    """Bytes between two tokens' activation rows (act_blocks.h act_row_stride): padded to 16."""
    return -(-(k // values) * (292 if values == 256 else 40) // 16) * 16


def act_bytes(t, n: int, k: int) -> int:
    """Bytes of the activation rows matmul's scratch holds for x (n, k)."""
    return 0 if t.name in FLOAT_TYPES else n * act_stride(act_values(t), k)


def act_rows(blocks: np.ndarray, values: int, n: int, k: int) -> np.ndarray:
    """The CPU's activation blocks (n rows of k / values) laid out as a CUDA
    device holds them (kernels/cuda/act_rows.cuh): codes, scales, half sums,
    each row padded with zeros to act_stride."""
    halves, nb = values // 16, k // values
    b = blocks.reshape(n, nb, 4 + 2 * halves + values)  # d (float), sum (int16 per half), qs
    out = np.zeros((n, act_stride(values, k)), np.uint8)
    out[:, :k] = b[:, :, 4 + 2 * halves:].reshape(n, k)
    out[:, k:k + 4 * nb] = b[:, :, :4].reshape(n, -1)
    out[:, k + 4 * nb:k + 4 * nb + 2 * halves * nb] = b[:, :, 4:4 + 2 * halves].reshape(n, -1)
    return out.reshape(-1)


def as_planar(t, w: np.ndarray, k: int) -> np.ndarray:
    """w's rows of k values as planar rows (float rows stay as they are)."""
    return w if t.name in FLOAT_TYPES else _core.planar_rows(int(t), w, k)


class Guarded:
    """A copy of `a` inside a buffer with PAD canary bytes either side, at a
    16-byte aligned address plus `offset` bytes."""

    def __init__(self, a: np.ndarray, offset: int = 0):
        a = np.ascontiguousarray(a)
        self.raw = np.full(a.nbytes + 2 * PAD + 16 + offset, CANARY, np.uint8)
        start = (-self.raw.ctypes.data) % 16 + PAD + offset
        self.a = self.raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        self.a[...] = a
        self.span = (start, start + a.nbytes)

    def result(self) -> np.ndarray:
        """The buffer's contents, after checking that nothing was written outside it."""
        outside = np.concatenate([self.raw[:self.span[0]], self.raw[self.span[1]:]])
        assert np.all(outside == CANARY), "the kernel wrote outside its output"
        return self.a.copy()


class Emulator:
    """The emulated launchers (tests/cuda_emulator/entry.cpp) through ctypes;
    host memory stands in for device memory."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(str(path))
        for name, args in SIGNATURES.items():
            getattr(self.lib, name).argtypes = args
            getattr(self.lib, name).restype = ctypes.c_int
        for name, arg in (("hi_emu_set_sm_count", I32), ("hi_emu_set_workers", I32), ("hi_emu_set_seed", U64)):
            getattr(self.lib, name).argtypes = [arg]
            getattr(self.lib, name).restype = None
        self.lib.hi_emu_error.restype = ctypes.c_char_p
        self.lib.hi_emu_take_log.restype = ctypes.c_char_p

    def call(self, name: str, *args) -> None:
        if getattr(self.lib, name)(*args):
            raise RuntimeError(self.lib.hi_emu_error().decode())

    def take_log(self) -> list[str]:
        """The kernels launched since the last call, in order."""
        return self.lib.hi_emu_take_log().decode().splitlines()

    def quantize_act(self, values: int, x: np.ndarray, cpu: bool = False) -> np.ndarray:
        """x's activation rows as the CUDA kernels write them; cpu=True: the
        CPU's activation blocks, laid out the same way (act_rows)."""
        n, k = x.shape
        if not cpu:
            out = Guarded(np.zeros(n * act_stride(values, k), np.uint8))
            self.call("hi_emu_quantize_act", values, ptr(x), n, k, ptr(out.a))
            return out.result()
        out = Guarded(np.zeros(n * (k // values) * (40 if values == 32 else 292), np.uint8))
        self.call("hi_emu_cpu_quantize_activations", values, ptr(x), n, k, ptr(out.a))
        return act_rows(out.result(), values, n, k)

    # planar=True: the weights (table) given are planar rows (as_planar), as a
    # CUDA device holds placed weights.

    def matmul(self, t, w: np.ndarray, rows: int, k: int, x: np.ndarray,
               planar: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(y, the scratch: x's activation blocks for quantised types)."""
        n = len(x)
        y = Guarded(np.full((n, rows), np.nan, np.float32))
        scratch = Guarded(np.zeros(max(act_bytes(t, n, k), 1), np.uint8))
        w = Guarded(w)  # 16-byte aligned
        self.call("hi_emu_matmul", int(t), ptr(w.a), rows, k, ptr(x), n, ptr(y.a), ptr(scratch.a), int(planar))
        return y.result(), scratch.result()

    def matmul_group(self, types: list, ws: list[np.ndarray], rows: list[int], k: int, x: np.ndarray,
                     act: np.ndarray | None, planar: bool = False) -> list[np.ndarray]:
        """The products of one input (a CUDA device's multiply) from its activation blocks act."""
        n, count = len(x), len(types)
        ws = [Guarded(w) for w in ws]
        ys = [Guarded(np.full((n, r), np.nan, np.float32)) for r in rows]
        act = None if act is None else Guarded(act).a
        # (count,) each: held in names while the call runs
        type_ids = np.array([int(t) for t in types], np.uint32)
        w_ptrs = np.array([w.a.ctypes.data for w in ws], np.uint64)
        row_counts = np.array(rows, np.int64)
        y_ptrs = np.array([y.a.ctypes.data for y in ys], np.uint64)
        self.call("hi_emu_matmul_group", count, ptr(type_ids), ptr(w_ptrs), ptr(row_counts), k, ptr(x), ptr(act), n,
                  ptr(y_ptrs), int(planar))
        return [y.result() for y in ys]

    def mmvq(self, t, w: np.ndarray, rows: int, k: int, x: np.ndarray, act: np.ndarray | None,
             planar: bool = False) -> np.ndarray:
        y = Guarded(np.full((len(x), rows), np.nan, np.float32))
        act = None if act is None else Guarded(act).a  # 16-byte aligned, as the kernels need
        self.call("hi_emu_mmvq", int(t), ptr(w), rows, k, ptr(x), ptr(act), len(x), ptr(y.a), int(planar))
        return y.result()

    def mmq(self, t, w: np.ndarray, rows: int, k: int, x: np.ndarray, act: np.ndarray | None,
            planar: bool = False) -> np.ndarray:
        y = Guarded(np.full((len(x), rows), np.nan, np.float32))
        act = None if act is None else Guarded(act).a
        self.call("hi_emu_mmq", int(t), ptr(w), rows, k, ptr(x), ptr(act), len(x), ptr(y.a), int(planar))
        return y.result()

    def get_rows(self, t, table: np.ndarray, cols: int, ids: np.ndarray, scale: float,
                 planar: bool = False) -> np.ndarray:
        out = Guarded(np.full((len(ids), cols), np.nan, np.float32))
        self.call("hi_emu_get_rows", int(t), ptr(table), cols, ptr(ids), len(ids), scale, ptr(out.a), int(planar))
        return out.result()

    def set_rows(self, t, table: np.ndarray, cols: int, ids: np.ndarray, src: np.ndarray,
                 second: tuple | None = None):
        """The updated table; with second = (t, table, cols, src), both tables from one launch."""
        out = Guarded(table)
        out_b = None if second is None else Guarded(second[1])
        t_b, cols_b, src_b = (0, 0, None) if second is None else (int(second[0]), second[2], second[3])
        self.call("hi_emu_set_rows", int(t), ptr(out.a), cols, ptr(src), t_b, None if out_b is None else ptr(out_b.a),
                  cols_b, ptr(src_b), ptr(ids), len(ids))
        return out.result() if second is None else (out.result(), out_b.result())

    def rms_norm(self, x: np.ndarray, w: np.ndarray | None, eps: float, in_place: bool = False) -> np.ndarray:
        y = Guarded(x if in_place else np.full_like(x, np.nan))
        self.call("hi_emu_rms_norm", ptr(y.a if in_place else x), ptr(w), ptr(y.a), x.shape[0], x.shape[1], eps)
        return y.result()

    def add_rms_norm(self, x: np.ndarray, delta: np.ndarray, w: np.ndarray | None,
                     eps: float) -> tuple[np.ndarray, np.ndarray]:
        """(x + delta, the norm of it) from one launch."""
        total, y = Guarded(x), Guarded(np.full_like(x, np.nan))
        self.call("hi_emu_add_rms_norm", ptr(total.a), ptr(delta), ptr(w), ptr(y.a), x.shape[0], x.shape[1], eps)
        return total.result(), y.result()

    def rope(self, x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, freq_scale: float, style: str,
             x2: np.ndarray | None = None):
        """x rotated, or (x, x2) rotated in one launch."""
        y, y2 = Guarded(x), None if x2 is None else Guarded(x2)
        n_tokens, n_heads, head_dim = x.shape
        self.call("hi_emu_rope", ptr(y.a), n_heads, None if y2 is None else ptr(y2.a), 0 if y2 is None else x2.shape[1],
                  ptr(pos), n_tokens, head_dim, n_rot, base, freq_scale, int(style == "neox"))
        return y.result() if y2 is None else (y.result(), y2.result())

    def gated_activation(self, gate: np.ndarray, up: np.ndarray, act: str, in_place: bool = False) -> np.ndarray:
        out = Guarded(gate if in_place else np.full_like(gate, np.nan))
        self.call("hi_emu_gated_activation", ptr(out.a if in_place else gate), ptr(up), ptr(out.a), gate.size,
                  int(act == "gelu_tanh"))
        return out.result()

    def add(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = Guarded(x)
        self.call("hi_emu_add", ptr(out.a), ptr(y), x.size)
        return out.result()

    def add_bias(self, y: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = Guarded(y)
        self.call("hi_emu_add_bias", ptr(out.a), ptr(b), y.shape[0], y.shape[1])
        return out.result()

    def softcap(self, x: np.ndarray, cap: float) -> np.ndarray:
        out = Guarded(x)
        self.call("hi_emu_softcap", ptr(out.a), x.size, cap)
        return out.result()

    def attention(self, q, k_type, k_raw, v_type, v_raw, n_cells, n_head_kv, d_v, cells, begin, end, scale,
                  softcap, parts: bool = True) -> np.ndarray:
        """parts=False gives the kernel no room for a split step's partial results."""
        n_q, n_head, d_k = q.shape
        out = Guarded(np.full((n_q, n_head, d_v), np.nan, np.float32))
        cells = cells if len(cells) else np.zeros(1, np.int32)
        # (min(n_q, 16), n_head, 8 splits, d_v + 2): op_types.h attention_parts_floats. Stale finite
        # values, as the workspace's feed-forward phase leaves there: a part not written shows.
        room = Guarded(np.full(min(n_q, 16) * n_head * 8 * (d_v + 2), 0.5, np.float32)) if parts else None
        self.call("hi_emu_attention", ptr(q), n_q, n_head, int(qtype(k_type)), ptr(k_raw), int(qtype(v_type)),
                  ptr(v_raw), n_cells, n_head_kv, d_k, d_v, ptr(cells), ptr(begin), ptr(end), scale, softcap,
                  ptr(out.a), None if room is None else ptr(room.a))
        if room is not None:
            room.result()  # nothing written outside it
        return out.result()


@pytest.fixture(scope="session")
def _emulator(tmp_path_factory) -> Emulator:
    if emulator_build.compiler() is None:
        pytest.skip("no C++ compiler (g++ or $CXX) to build the CUDA emulator")
    if emulator_build.sanitized() and "asan" not in os.environ.get("LD_PRELOAD", ""):
        pytest.skip("HI_EMU_SANITIZE needs the ASan runtime in LD_PRELOAD (tests/cuda_emulator/build.py)")
    return Emulator(emulator_build.build(tmp_path_factory.mktemp("cuda_emulator")))


@pytest.fixture
def emu(_emulator, rng) -> Emulator:
    """The emulator, its thread order seeded from this test's rng, its launch log empty."""
    _emulator.lib.hi_emu_set_seed(int(rng.integers(0, 2**63)))
    _emulator.lib.hi_emu_set_sm_count(132)
    _emulator.take_log()
    return _emulator


@pytest.fixture(scope="session")
def cpu():
    """The CPU backend's device (the reference for every op)."""
    return make_device("cpu")


@contextlib.contextmanager
def scalar_cpu_kernels():
    hetinfer.set_kernel_path("scalar")
    try:
        yield
    finally:
        hetinfer.set_kernel_path("auto")


def matmul_k(t) -> int:
    """k per type: 7 chunks for the 32-value types (a partial step of mmq's 4),
    2 super-blocks for the K-quants, a partial last chunk for float types."""
    return 301 if t.name in FLOAT_TYPES else 512 if t.name in K_QUANTS else 224


# ---- the emulator itself ---------------------------------------------------------------------


def test_emulator_collectives_and_shared_memory(emu, rng):
    blocks, threads = 3, 64
    v = rng.integers(-1000, 1000, blocks * threads).astype(np.int32)
    out = np.zeros(4 * v.size, np.int32)
    emu.call("hi_emu_selftest", 0, ptr(v), ptr(out), blocks, threads)
    out = out.reshape(-1, 32, 4)
    warps = v.reshape(-1, 32)
    lane = np.arange(32)
    np.testing.assert_array_equal(out[:, :, 0], warps[:, lane ^ 5])
    np.testing.assert_array_equal(out[:, :, 1], np.where(lane + 3 < 32, warps[:, np.minimum(lane + 3, 31)], warps))
    np.testing.assert_array_equal(out[:, :, 2], np.repeat(warps[:, 7:8], 32, axis=1))
    ballot = ((warps & 1) << lane).sum(axis=1).astype(np.uint32).view(np.int32)
    np.testing.assert_array_equal(out[:, :, 3], np.repeat(ballot[:, None], 32, axis=1))

    sums = np.zeros(2 * blocks, np.int32)
    emu.call("hi_emu_selftest", 1, None, ptr(sums), blocks, threads)
    b = np.arange(blocks)
    np.testing.assert_array_equal(sums[0::2], b * 1000 * threads + threads * (threads - 1) // 2)  # per-block storage
    np.testing.assert_array_equal(sums[1::2], -1)  # never written in this block: the 0xff poison


def test_emulator_reports_misuse(emu):
    out = np.zeros(64, np.int32)
    with pytest.raises(RuntimeError, match="deadlock: 31 lane"):
        emu.call("hi_emu_selftest", 2, None, ptr(out), 1, 64)
    with pytest.raises(RuntimeError, match="diverged: __syncthreads"):
        emu.call("hi_emu_selftest", 3, None, ptr(out), 1, 64)


# ---- activations and matmul ------------------------------------------------------------------


@pytest.mark.parametrize("values", [32, 256])
def test_quantize_act(emu, rng, values):
    n, k = 6, 1024
    x = (rng.standard_normal((n, k)) * 10.0 ** rng.uniform(-3, 3, (n, 1))).astype(np.float32)
    blocks = x.reshape(-1, values)
    blocks[1] = 0.0  # scale 0
    blocks[2] = 0.0
    blocks[2, 5] = -3e-3  # one value
    blocks[3] = rng.choice([-3.5, -2.5, -0.5, 0.5, 1.5, 2.5], values)
    blocks[3, 7] = 127.0  # scale 1: every other code a tie, rounded to even
    got = emu.quantize_act(values, x)
    np.testing.assert_array_equal(got, emu.quantize_act(values, x, cpu=True))
    assert emu.take_log() == [f"quantize_q{values}"]
    with pytest.raises(RuntimeError, match="not a multiple"):
        emu.quantize_act(values, np.ascontiguousarray(x[:, :values + 16]))


@pytest.mark.parametrize("values", [32, 256])
@pytest.mark.parametrize("act", ["silu", "gelu_tanh"])
def test_quantize_gated_act(emu, rng, values, act):
    """The down projection's input formed while it is rounded (one launch):
    the gated values and the blocks bit for bit gated_activation's, then
    quantize_act's."""
    n, k = 3, 512
    gate = (rng.standard_normal((n, k)) * 4).astype(np.float32)
    up = rng.standard_normal((n, k)).astype(np.float32)
    gated = Guarded(gate)
    blocks = Guarded(np.zeros(n * act_stride(values, k), np.uint8))
    emu.take_log()
    emu.call("hi_emu_quantize_gated_act", values, ptr(gated.a), ptr(up), int(act == "gelu_tanh"), n, k, ptr(blocks.a))
    assert emu.take_log() == [f"quantize_q{values}"]
    separate = emu.gated_activation(gate, up, act)
    np.testing.assert_array_equal(gated.result().view(np.uint32), separate.view(np.uint32))
    np.testing.assert_array_equal(blocks.result(), emu.quantize_act(values, separate).reshape(-1))


@pytest.mark.parametrize("t", TYPES)
@pytest.mark.parametrize("n", [1, 8, 16])  # decode; one pass of the matvec; the largest batch it takes
def test_mmvq(emu, cpu, rng, t, n):
    rows, k = 67, matmul_k(t)  # 67: the last block of 4 rows has 3
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    y, scratch = emu.matmul(t, w, rows, k, x)
    float_rows = t.name in FLOAT_TYPES
    assert emu.take_log()[-1] == "mmvq_kernel<T, RowLayout::Blocks>"
    assert rel_err(y, _core.matmul(int(t), w, rows, k, x, device=cpu)) < 1e-5
    if not float_rows:
        np.testing.assert_array_equal(scratch, emu.quantize_act(act_values(t), x, cpu=True))
    # Planar rows of 7 or 2 blocks: read byte by byte through Planar<T> (Q4_K,
    # whose planes stay aligned at any width: 16 bytes at a time), the same
    # integer sums and float ops.
    y_planar, _ = emu.matmul(t, as_planar(t, w, k), rows, k, x, planar=True)
    layout = "RowLayout::Blocks" if float_rows else "kWide" if t.name == "Q4_K" else "RowLayout::Planar"
    assert emu.take_log()[-1] == f"mmvq_kernel<T, {layout}>"
    np.testing.assert_array_equal(y_planar.view(np.uint32), y.view(np.uint32))


# kernels/cuda/chunk_words.cuh: the types with 16-byte readers (has_wide_reader),
# and the multiple of blocks a row needs for them (wide_block_multiple).
WIDE_BLOCK_MULTIPLE = {"Q4_0": 8, "Q8_0": 8, "Q4_K": 1, "Q6_K": 8}


@pytest.mark.parametrize("t", [t for t in TYPES if t.values[0].name not in FLOAT_TYPES])
@pytest.mark.parametrize("blocks,n", [(8, 1), (12, 3), (16, 8)])
def test_mmvq_planar_16_byte_planes(emu, cpu, rng, t, blocks, n):
    """Planar rows whose wide planes are 16-byte aligned take the 16-byte reads
    where a type has them (kWide: Planar16, else Planar); a base 2 bytes off 16
    takes the byte reads. Every layout gives the same y, bit for bit, within
    1e-5 of the CPU."""
    rows, k = 9, blocks * (256 if t.name in K_QUANTS else 32)
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    act = emu.quantize_act(act_values(t), x, cpu=True)
    blocks_y = emu.mmvq(t, w, rows, k, x, act)
    planar = Guarded(as_planar(t, w, k))
    assert planar.a.ctypes.data % 16 == 0
    emu.take_log()
    wide = emu.mmvq(t, planar.a, rows, k, x, act, planar=True)
    aligned = blocks % WIDE_BLOCK_MULTIPLE.get(t.name, 8) == 0
    assert emu.take_log() == ["mmvq_kernel<T, kWide>" if aligned else "mmvq_kernel<T, RowLayout::Planar>"]
    shifted = Guarded(as_planar(t, w, k), offset=2)
    narrow = emu.mmvq(t, shifted.a, rows, k, x, act, planar=True)
    assert emu.take_log() == ["mmvq_kernel<T, RowLayout::Planar>"]
    np.testing.assert_array_equal(wide.view(np.uint32), blocks_y.view(np.uint32))
    np.testing.assert_array_equal(narrow.view(np.uint32), blocks_y.view(np.uint32))
    assert rel_err(blocks_y, _core.matmul(int(t), w, rows, k, x, device=cpu)) < 1e-5


@pytest.mark.parametrize("t", [pytest.param(t, id=t.name) for t in map(qtype, ["F16", "Q5_1", "Q6_K"])])
def test_mmvq_more_tokens_than_a_pass(emu, cpu, rng, t):
    rows, k, n = 9, matmul_k(t), 11  # the matvec takes tokens 8 at a time
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    act = None if t.name in FLOAT_TYPES else emu.quantize_act(act_values(t), x, cpu=True)
    y = emu.mmvq(t, w, rows, k, x, act)
    assert rel_err(y, _core.matmul(int(t), w, rows, k, x, device=cpu)) < 1e-5


@pytest.mark.parametrize("t", TYPES)
@pytest.mark.parametrize("rows,n", [(67, 70), (64, 17)])  # partial row and token tiles; the fewest tokens mmq takes
@pytest.mark.parametrize("planar", [False, True], ids=["blocks", "planar"])
def test_mmq(emu, cpu, rng, t, rows, n, planar):
    k = matmul_k(t)
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    y, _ = emu.matmul(t, as_planar(t, w, k) if planar else w, rows, k, x, planar=planar)
    if t.name in FLOAT_TYPES:
        assert emu.take_log() == ["mmq_float<T>"]
        assert rel_err(y, _core.matmul(int(t), w, rows, k, x, device=cpu)) < 1e-5
    else:
        assert emu.take_log()[-1] == "mmq_quant<T>"
        with scalar_cpu_kernels():
            ref = _core.matmul(int(t), w, rows, k, x, device=cpu)
        np.testing.assert_array_equal(y.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("t", [pytest.param(t, id=t.name) for t in map(qtype, ["BF16", "Q4_1", "Q3_K"])])
def test_mmq_three_tiles_each_way(emu, cpu, rng, t):
    rows, k, n = 130, matmul_k(t), 131  # the last row tile has 2 rows, the last token tile 3 tokens
    w = random_weights(t, rows, k, rng)
    x = rng.standard_normal((n, k)).astype(np.float32)
    if t.name in FLOAT_TYPES:
        y = emu.mmq(t, w, rows, k, x, None)
        assert rel_err(y, _core.matmul(int(t), w, rows, k, x, device=cpu)) < 1e-5
    else:
        y = emu.mmq(t, w, rows, k, x, emu.quantize_act(act_values(t), x, cpu=True))
        with scalar_cpu_kernels():
            ref = _core.matmul(int(t), w, rows, k, x, device=cpu)
        np.testing.assert_array_equal(y.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("kind", ["32", "256"])
@pytest.mark.parametrize("n", [1, 12, 20])  # one matvec pass; two; the tiled matmul
@pytest.mark.parametrize("planar", [False, True], ids=["blocks", "planar"])
def test_matmul_group(emu, rng, kind, n, planar):
    """The products of one input: runs of up to 3 neighbours of one type are one
    matvec launch (q, k and v), each product's rows found from the grid row;
    empty products and launches of one, two and three products give each y
    the single product's, bit for bit."""
    names = ["Q4_0", "Q4_0", "Q4_0", "Q4_0", "Q8_0", "Q4_0"] if kind == "32" else ["Q4_K", "Q4_K", "Q6_K", "Q4_K"]
    rows = [67, 0, 5, 9, 12, 4][:len(names)]
    types = [qtype(name) for name in names]
    k = 512
    ws = [random_weights(t, r, k, rng) for t, r in zip(types, rows)]
    ws = [as_planar(t, w, k) for t, w in zip(types, ws)] if planar else ws
    x = rng.standard_normal((n, k)).astype(np.float32)
    act = emu.quantize_act(int(kind), x, cpu=True)
    emu.take_log()
    ys = emu.matmul_group(types, ws, rows, k, x, act, planar)
    # Matvec launches: Q4_0 x3 | Q4_0 | Q8_0 | Q4_0, or Q4_K x2 | Q6_K | Q4_K;
    # the tiled matmul: one per non-empty product.
    launches = (4 if kind == "32" else 3) if n <= 16 else sum(r > 0 for r in rows)
    assert len(emu.take_log()) == launches
    for t, w, r, y in zip(types, ws, rows, ys):
        alone = emu.mmvq(t, w, r, k, x, act, planar) if n <= 16 else emu.mmq(t, w, r, k, x, act, planar)
        np.testing.assert_array_equal(y.view(np.uint32), alone.view(np.uint32))


def test_matmul_rejects_bad_arguments(emu):
    x = np.zeros((2, 48), np.float32)
    with pytest.raises(RuntimeError, match="not a multiple"):
        emu.matmul(qtype("Q4_0"), np.zeros(1024, np.uint8), 3, 48, x)
    with pytest.raises(RuntimeError, match="unsupported weight type id 4"):
        emu.call("hi_emu_mmvq", 4, None, 1, 32, None, None, 1, None, 0)


# ---- rows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", TYPES)
@pytest.mark.parametrize("planar", [False, True], ids=["blocks", "planar"])
def test_get_rows(emu, cpu, rng, t, planar):
    rows, cols = 20, (301 if t.name in FLOAT_TYPES else 512)
    table = rng.integers(0, 256, rows * row_bytes(t, cols), dtype=np.uint8)  # every bit pattern, NaNs included
    ids = rng.integers(0, rows, 20).astype(np.int32)  # > 128 chunks: two blocks, rows split between them
    given = as_planar(t, table, cols) if planar else table
    for scale in (1.0, 0.37):
        y = emu.get_rows(t, given, cols, ids, scale, planar=planar)
        ref = _core.get_rows(int(t), table, cols, ids, scale, device=cpu)
        np.testing.assert_array_equal(y.view(np.uint32), ref.view(np.uint32))


@pytest.mark.parametrize("name", ["F32", "F16", "Q8_0", "Q4_0"])
def test_set_rows(emu, cpu, rng, name):
    rows, cols = 12, (300 if name in FLOAT_TYPES else 256)
    table = rng.integers(0, 256, rows * row_bytes(name, cols), dtype=np.uint8)  # untouched rows must stay
    ids = rng.choice(rows, 5, replace=False).astype(np.int32)
    src = (rng.standard_normal((5, cols)) * 10.0 ** rng.uniform(-3, 3, (5, 1))).astype(np.float32)
    src[0, :32] = 0.0  # a chunk of zeros: scale 0
    src[1, :32] = rng.uniform(-1.0, 1.0, 32)
    src[1, 3], src[1, 9] = 8.0, -8.0  # the same largest magnitude twice: q4_0 takes the first
    src[2, 32:64] *= 1e-6  # a tiny scale (subnormal in f16)
    got = emu.set_rows(qtype(name), table, cols, ids, src)
    np.testing.assert_array_equal(got, _core.set_rows(int(qtype(name)), table, cols, ids, src, device=cpu))
    # With a second table (a layer's values beside its keys: another type and width), one launch for both.
    other = "Q4_0" if name != "Q4_0" else "F16"
    table_b = rng.integers(0, 256, rows * row_bytes(other, 64), dtype=np.uint8)
    src_b = rng.standard_normal((5, 64)).astype(np.float32)
    emu.take_log()
    got_a, got_b = emu.set_rows(qtype(name), table, cols, ids, src, second=(qtype(other), table_b, 64, src_b))
    assert emu.take_log() == ["set_rows_kernel"]
    np.testing.assert_array_equal(got_a, got)
    np.testing.assert_array_equal(got_b, _core.set_rows(int(qtype(other)), table_b, 64, ids, src_b, device=cpu))


# ---- norm, rope, element-wise ---------------------------------------------------------------------


@pytest.mark.parametrize("rows,dim,kernel", [(37, 640, "rms_norm_warp_kernel"), (5, 1500, "rms_norm_block_kernel")])
@pytest.mark.parametrize("with_weight", [True, False])
def test_rms_norm(emu, cpu, rng, rows, dim, kernel, with_weight):
    x = rng.standard_normal((rows, dim)).astype(np.float32) * 3
    w = rng.standard_normal(dim).astype(np.float32) if with_weight else None
    y = emu.rms_norm(x, w, 1e-6)
    assert emu.take_log() == [kernel]
    assert rel_err(y, _core.rms_norm(x, w, 1e-6, device=cpu)) < 1e-5
    np.testing.assert_array_equal(emu.rms_norm(x, w, 1e-6, in_place=True), y)
    emu.take_log()
    delta = rng.standard_normal((rows, dim)).astype(np.float32)
    total, fused = emu.add_rms_norm(x, delta, w, 1e-6)  # one launch: bit for bit add, then the norm
    assert emu.take_log() == [kernel]
    np.testing.assert_array_equal(total, emu.add(x, delta))
    np.testing.assert_array_equal(fused.view(np.uint32), emu.rms_norm(total, w, 1e-6).view(np.uint32))


@pytest.mark.parametrize("style", ["normal", "neox"])
@pytest.mark.parametrize("shape,n_rot", [((9, 4, 64), 64), ((9, 4, 64), 32), ((3, 2, 1040), 1028)],
                         ids=["full", "partial", "untabled"])  # 1028: n_rot / 2 > 512, inv_freq in the kernel
def test_rope(emu, cpu, rng, style, shape, n_rot):
    x = rng.standard_normal(shape).astype(np.float32)
    pos = rng.integers(0, 4096, shape[0]).astype(np.int32)
    y = emu.rope(x, pos, n_rot, 10000.0, 0.5, style)
    assert rel_err(y, _core.rope(x, pos, n_rot, 10000.0, 0.5, style, device=cpu)) < 1e-5
    np.testing.assert_array_equal(y[..., n_rot:], x[..., n_rot:])
    emu.take_log()
    k = rng.standard_normal((shape[0], 3, shape[2])).astype(np.float32)  # keys: another head count
    q_pair, k_pair = emu.rope(x, pos, n_rot, 10000.0, 0.5, style, x2=k)  # one launch, each as alone
    assert emu.take_log() == ["rope_kernel"]
    np.testing.assert_array_equal(q_pair.view(np.uint32), y.view(np.uint32))
    np.testing.assert_array_equal(k_pair.view(np.uint32), emu.rope(k, pos, n_rot, 10000.0, 0.5, style).view(np.uint32))


@pytest.mark.parametrize("act", ["silu", "gelu_tanh"])
def test_gated_activation(emu, cpu, rng, act):
    g = rng.standard_normal(10000).astype(np.float32) * 4
    u = rng.standard_normal(10000).astype(np.float32)
    y = emu.gated_activation(g, u, act)
    assert rel_err(y, _core.gated_activation(g, u, act, device=cpu)) < 1e-5
    np.testing.assert_array_equal(emu.gated_activation(g, u, act, in_place=True), y)


def test_softcap(emu, cpu, rng):
    x = rng.standard_normal(1000).astype(np.float32) * 100
    assert rel_err(emu.softcap(x, 30.0), _core.softcap(x, 30.0, device=cpu)) < 1e-5


def test_add_and_bias(emu, cpu, rng):
    x = rng.standard_normal((37, 300)).astype(np.float32)
    y = rng.standard_normal((37, 300)).astype(np.float32)
    b = rng.standard_normal(300).astype(np.float32)
    np.testing.assert_array_equal(emu.add(x, y), _core.add(x, y, device=cpu))
    np.testing.assert_array_equal(emu.add_bias(x, b), _core.add_bias(x, b, device=cpu))


# ---- attention ---------------------------------------------------------------------------------------


def visible_cells(cell_seq, cell_pos, q_seq, q_pos, window):
    """VisibleCells (csrc/cpu/flash_attn.cpp) in numpy: the batch's cells sorted
    by (sequence, position, index), and each query's slice [begin, end) of them."""
    idx = np.flatnonzero(np.isin(cell_seq, q_seq) & (cell_seq >= 0))
    cells = idx[np.lexsort((idx, cell_pos[idx], cell_seq[idx]))].astype(np.int32)
    seq, pos = cell_seq[cells], cell_pos[cells]
    begin, end = np.zeros(len(q_seq), np.int64), np.zeros(len(q_seq), np.int64)
    for t, (s, p) in enumerate(zip(q_seq, q_pos)):
        run = np.flatnonzero(seq == s)
        if run.size == 0:
            continue  # a sequence without cells: an empty slice
        first, last = run[0], run[-1] + 1
        lowest = p - window + 1 if window > 0 else np.iinfo(np.int64).min
        begin[t] = first + np.searchsorted(pos[first:last], lowest, "left")
        end[t] = first + np.searchsorted(pos[first:last], p, "right")
    return cells, begin, end


def attention_float64(q, k, v, cells, begin, end, scale, softcap):
    """Attention over the dequantised caches k, v (n_cells, n_head_kv, d) in float64."""
    return attention_over(q, k, v, [cells[begin[t]:end[t]] for t in range(q.shape[0])], scale, softcap)


def kv_cache(rng, t: str, n_cells: int, n_head_kv: int, d: int, offset: int = 0):
    """(raw bytes at a 16-byte aligned address + offset, the dequantised values)."""
    x = rng.standard_normal((n_cells, n_head_kv, d)).astype(np.float32)
    raw = Guarded(quantize(x.reshape(-1, d), t).reshape(-1), offset).a
    return raw, dequantize_bytes(raw, t, x.shape).astype(np.float64)


def attention_problem(rng, scenario: str) -> dict:
    """Sizes and cells: n_cells, n_head, n_head_kv, d_k, d_v, cell_seq, cell_pos, q_seq, q_pos."""
    if scenario == "batch":  # tests/test_ops.py's: two interleaved sequences, empty cells, a query without cells
        p = dict(n_cells=150, n_head=8, n_head_kv=2, d_k=64, d_v=32)
        cell_seq = rng.integers(0, 2, p["n_cells"]).astype(np.int32)
        cell_seq[rng.choice(p["n_cells"], 10, replace=False)] = -1
        cell_pos = np.zeros(p["n_cells"], np.int32)
        for s in (0, 1):
            cell_pos[cell_seq == s] = np.arange(np.sum(cell_seq == s))
        return p | dict(cell_seq=cell_seq, cell_pos=cell_pos, q_seq=np.array([0, 1, 0, 1, 2], np.int32),
                        q_pos=np.array([70, 69, 3, 30, 5], np.int32))
    if scenario == "long_decode":  # 3 sequences decoding in a cache of 1300 cells: 1100, 5 and no cells
        cell_seq, cell_pos, q_seq, q_pos = long_cache_decode(rng, 1300)
        return dict(n_cells=1300, n_head=4, n_head_kv=2, d_k=64, d_v=64, cell_seq=cell_seq, cell_pos=cell_pos,
                    q_seq=q_seq, q_pos=q_pos)
    if scenario == "decode":  # one query at the newest of 130 cells stored in a shuffled order; n_rep 3
        return dict(n_cells=130, n_head=6, n_head_kv=2, d_k=64, d_v=64, cell_seq=np.zeros(130, np.int32),
                    cell_pos=rng.permutation(130).astype(np.int32), q_seq=np.zeros(1, np.int32),
                    q_pos=np.array([129], np.int32))
    # prefill: a 40-token prompt after 50 cached cells; one KV head (n_rep 8), or two (n_rep 4)
    return dict(n_cells=90, n_head=8, n_head_kv=1 if scenario == "prefill" else 2, d_k=32, d_v=64,
                cell_seq=np.zeros(90, np.int32), cell_pos=np.arange(90, dtype=np.int32),
                q_seq=np.zeros(40, np.int32), q_pos=np.arange(50, 90, dtype=np.int32))


def check_attention(emu, cpu, rng, k_type, v_type, p: dict, window=0, softcap=0.0, offset=0, sms=(132,),
                    against_unsplit=False):
    """The emulated kernel against the CPU and float64 for the problem p
    (attention_problem); against_unsplit: and against the kernel given no room
    for a split step's parts, within 1e-5."""
    n_cells, n_head_kv, d_v = p["n_cells"], p["n_head_kv"], p["d_v"]
    k_raw, k_ref = kv_cache(rng, k_type, n_cells, n_head_kv, p["d_k"], offset)
    v_raw, v_ref = kv_cache(rng, v_type, n_cells, n_head_kv, d_v, offset)
    q = rng.standard_normal((len(p["q_seq"]), p["n_head"], p["d_k"])).astype(np.float32)
    scale = float(1.0 / np.sqrt(p["d_k"]))
    cells, begin, end = visible_cells(p["cell_seq"], p["cell_pos"], p["q_seq"], p["q_pos"], window)
    outs = []
    for s in sms:
        emu.lib.hi_emu_set_sm_count(s)
        outs.append(emu.attention(q, k_type, k_raw, v_type, v_raw, n_cells, n_head_kv, d_v, cells, begin, end,
                                  scale, softcap))
    for other in outs[1:]:  # the block plan never changes a bit
        np.testing.assert_array_equal(other.view(np.uint32), outs[0].view(np.uint32))
    y = outs[0]
    ref_cpu = _core.flash_attention(q, k_raw, int(qtype(k_type)), v_raw, int(qtype(v_type)), n_head_kv, d_v,
                                    p["q_seq"], p["q_pos"], p["cell_seq"], p["cell_pos"], window, scale, softcap,
                                    device=cpu)
    np.testing.assert_array_equal(y[begin == end], 0.0)  # queries that see no cell
    assert rel_err(y, ref_cpu) < (1e-5 if k_type in ("F32", "F16") else 3e-2)
    assert rel_err(y, attention_float64(q, k_ref, v_ref, cells, begin, end, scale, softcap)) < 1e-5
    if against_unsplit:
        unsplit = emu.attention(q, k_type, k_raw, v_type, v_raw, n_cells, n_head_kv, d_v, cells, begin, end, scale,
                                softcap, parts=False)
        assert rel_err(y, unsplit) < 1e-5


KV_TYPES = [("F32", "F32"), ("F16", "F16"), ("Q8_0", "Q8_0"), ("Q4_0", "Q4_0"), ("F16", "Q4_0"), ("Q8_0", "F16")]


@pytest.mark.parametrize("k_type,v_type", KV_TYPES)
@pytest.mark.parametrize("scenario", ["batch", "decode", "prefill"])
@pytest.mark.parametrize("window,softcap", [(0, 0.0), (20, 0.0), (0, 5.0)])
def test_attention(emu, cpu, rng, k_type, v_type, scenario, window, softcap):
    # 1 SM: blocks take several query rows (GQA heads, tokens); 1000: one row each.
    check_attention(emu, cpu, rng, k_type, v_type, attention_problem(rng, scenario), window, softcap, sms=(1, 1000))


@pytest.mark.parametrize("k_type,v_type,d_k,d_v,offset", [
    ("F32", "F16", 34, 18, 0),  # head sizes not a multiple of 4: narrow loads with bounds
    ("F32", "F32", 64, 32, 4),  # float rows not 16-byte aligned: narrow loads
    ("Q8_0", "Q4_0", 64, 32, 1),  # blocks at odd addresses: byte loads
])
def test_attention_layouts(emu, cpu, rng, k_type, v_type, d_k, d_v, offset):
    p = dict(n_cells=70, n_head=4, n_head_kv=2, d_k=d_k, d_v=d_v, cell_seq=np.zeros(70, np.int32),
             cell_pos=np.arange(70, dtype=np.int32), q_seq=np.zeros(3, np.int32),
             q_pos=np.array([69, 10, 40], np.int32))
    check_attention(emu, cpu, rng, k_type, v_type, p, offset=offset)


@pytest.mark.parametrize("k_type,v_type", [("F16", "F16"), ("Q8_0", "Q4_0")])
@pytest.mark.parametrize("window", [0, 300])
def test_attention_split(emu, cpu, rng, k_type, v_type, window):
    """A decode step in a cache of more than 512 cells splits each query's
    cells (here 3 splits: 1100 cells in shares of 384; 5 cells, two empty
    shares; no cells) and merges the parts: within the tolerances of the
    unsplit kernel and bit for bit the same on any SM count."""
    check_attention(emu, cpu, rng, k_type, v_type, attention_problem(rng, "long_decode"), window, sms=(1, 1000),
                    against_unsplit=True)
    assert emu.take_log() == ["attention_kernel<KT, VT>", "merge_kernel"] * 2 + ["attention_kernel<KT, VT>"]


def test_attention_block_plan(emu, cpu, rng):
    # n_rep 4, 40 tokens sharing a slice start: 1 SM -> blocks of 2 tokens x 4 heads,
    # 30 -> 1 token x 4 heads, 1000 -> 1 x 1 (decode's spread of a group's heads).
    check_attention(emu, cpu, rng, "Q8_0", "F16", attention_problem(rng, "prefill_gqa"), sms=(1, 30, 1000))
