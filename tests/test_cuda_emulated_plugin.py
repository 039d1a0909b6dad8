"""The whole CUDA plugin (csrc/cuda with kernels/cuda) on the CPU emulation of
CUDA (tests/cuda_emulator): hetinfer loads it as cuda:N as it loads the real
libhetinfer_cuda.so, so the device's host code runs too, which
tests/test_cuda_emulated.py (the kernels' launchers alone) leaves out: the
plugin's entry points, memory, copies, the workspace as a GPU holds it, and
decode steps recorded as graphs and replayed.

Why: CI has no GPU, and on one the tests taking cuda:N (tests/test_ops.py,
tests/test_device_models.py) would be the first to run this code. Here they
run on the emulation in a pytest of their own (HETINFER_TEST_CUDA=emulated,
see conftest.py), and every one must pass; none may skip.

The emulated runtime (tests/cuda_emulator/runtime.cpp) is stricter than a GPU
where a GPU would fault or read garbage: cudaMalloc's bytes start as NaN, a
copy must lie inside one allocation on the side its kind names, a kernel's
pointer arguments (in structs too) must be memory of the current device, a
capture fails on what CUDA forbids during one (a copy to or from the host,
a synchronisation, an allocation or a free, the legacy stream), and a graph's
replay checks the memory it touches again. The tests below check those rules
are enforced, so that the plugin's passing means something. Two devices are
emulated here (HI_EMU_DEVICES=2), as in the run of the cuda:N tests.
"""

from __future__ import annotations

import ctypes
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from cuda_emulator import build as emulator_build
from hetinfer import cuda_runtime
from hetinfer.model import Model
from random_models import model_factory, nmse

if emulator_build.compiler() is None:
    pytest.skip("no C++ compiler (g++ or $CXX) to build the emulated CUDA plugin", allow_module_level=True)

TESTS = Path(__file__).resolve().parent
MEMCPY = {"to_device": 1, "to_host": 2, "on_device": 3}
CAPTURE_UNSUPPORTED, CAPTURE_INVALIDATED, INVALID_VALUE, INVALID_RESOURCE_HANDLE = 900, 901, 1, 400


@pytest.fixture(scope="module")
def plugin(tmp_path_factory):
    """The emulated plugin, with two devices, as hetinfer's cuda:N for this
    module, then the installed one again."""
    lib = emulator_build.build(tmp_path_factory.mktemp("cuda-plugin"), plugin=True)
    installed = cuda_runtime.PLUGIN
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HI_EMU_DEVICES", "2")  # read once, when the plugin first counts its devices
        emulator_build.use_plugin(lib)
        yield lib
    emulator_build.use_plugin(installed)


@pytest.fixture(scope="module")
def runtime(plugin):
    """The emulated CUDA runtime API of the plugin, through ctypes."""
    lib = ctypes.CDLL(str(plugin))
    V, P, Z, I = ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_int
    for name, args in {"cudaMalloc": [P, Z], "cudaFree": [V], "cudaMemcpyAsync": [V, V, Z, I, V],
                       "cudaMemsetAsync": [V, I, Z, V], "cudaStreamCreateWithFlags": [P, ctypes.c_uint],
                       "cudaStreamDestroy": [V], "cudaStreamSynchronize": [V], "cudaStreamBeginCapture": [V, I],
                       "cudaStreamEndCapture": [V, P], "cudaGraphInstantiate": [P, V, ctypes.c_ulonglong],
                       "cudaGraphLaunch": [V, V], "cudaGraphDestroy": [V], "cudaGraphExecDestroy": [V],
                       "cudaGetErrorString": [I], "cudaSetDevice": [I], "hi_emu_probe_copy": [V, V, I],
                       "hi_emu_probe_empty": [V]}.items():
        getattr(lib, name).argtypes = args
    lib.cudaGetErrorString.restype = ctypes.c_char_p
    return lib


def graph_counts(runtime) -> tuple[int, int]:
    captures, replays = ctypes.c_int64(), ctypes.c_int64()
    runtime.hi_emu_graph_counts(ctypes.byref(captures), ctypes.byref(replays))
    return captures.value, replays.value


def test_decode_steps_are_recorded_once_and_replayed(plugin, runtime, tmp_path, rng):
    """Steps that want every row's logits, 3 of 8 tokens then 6 of one: each
    size runs once as it is, is captured the second time (a capture fails on
    any call CUDA forbids in one; the captured work then runs as a replay)
    and replayed after. The replays read the step's cells and positions from
    device memory, so their logits are still the CPU's."""
    path = model_factory(tmp_path, seed=31)("llama", "Q4_K_M")
    ids = [int(t) for t in rng.integers(0, 500, 30)]
    got = []
    for devices in (["cpu"], ["cuda:0"]):
        before = graph_counts(runtime)
        with Model(path, devices=devices, n_ctx=64, n_batch=8) as m:
            prompt = m.prefill(ids[:24], all_logits=True)
            got.append(np.concatenate([prompt, *(m.prefill([t], start=24 + i) for i, t in enumerate(ids[24:]))]))
        captures, replays = (a - b for a, b in zip(graph_counts(runtime), before))
        assert (captures, replays) == ((2, 2 + 5) if devices == ["cuda:0"] else (0, 0))
    assert got[0].shape == (30, 512)
    assert nmse(got[1], got[0]) < 3e-3


def test_copies_must_lie_inside_device_memory(runtime):
    p = ctypes.c_void_p()
    assert runtime.cudaMalloc(ctypes.byref(p), 1000) == 0
    host = np.zeros(2000, np.uint8)
    try:
        assert runtime.cudaMemcpyAsync(host.ctypes.data, p, 1000, MEMCPY["to_host"], None) == 0
        assert (host[:1000] == 0xFF).all()  # what nothing wrote: NaN floats
        to_device = MEMCPY["to_device"]
        assert runtime.cudaMemcpyAsync(p, host.ctypes.data, 1000, to_device, None) == 0
        assert runtime.cudaMemcpyAsync(p, host.ctypes.data, 1001, to_device, None) == INVALID_VALUE  # one byte past
        assert runtime.cudaMemcpyAsync(host.ctypes.data, p, 8, to_device, None) == INVALID_VALUE  # host as device
        assert b"inside one allocation" in runtime.cudaGetErrorString(INVALID_VALUE)
        assert runtime.cudaMemsetAsync(p.value + 999, 0, 2, None) == INVALID_VALUE
        assert runtime.cudaFree(p.value + 8) == INVALID_VALUE  # not what cudaMalloc gave
    finally:
        assert runtime.cudaFree(p) == 0
        runtime.cudaGetLastError()


def in_thread(f):
    """f() on another thread (a stage's worker), its result."""
    out = []
    t = threading.Thread(target=lambda: out.append(f()))
    t.start()
    t.join()
    return out[0]


@pytest.mark.parametrize("forbidden", ["synchronize", "to_host", "malloc", "free", "legacy_stream",
                                       "synchronize_from_another_thread"])
def test_a_capture_fails_on_what_cuda_forbids_in_one(runtime, forbidden):
    stream, graph, p, q = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    assert runtime.cudaStreamCreateWithFlags(ctypes.byref(stream), 1) == 0
    assert runtime.cudaMalloc(ctypes.byref(p), 64) == 0
    assert runtime.cudaMalloc(ctypes.byref(q), 64) == 0
    host = np.zeros(64, np.uint8)
    try:
        assert runtime.cudaStreamBeginCapture(stream, 1) == 0
        assert runtime.cudaMemsetAsync(p, 0, 64, stream) == 0  # allowed: recorded
        e = {"synchronize": lambda: runtime.cudaStreamSynchronize(stream),
             "to_host": lambda: runtime.cudaMemcpyAsync(host.ctypes.data, p, 64, MEMCPY["to_host"], stream),
             "malloc": lambda: runtime.cudaMalloc(ctypes.byref(ctypes.c_void_p()), 64),
             "free": lambda: runtime.cudaFree(q),
             "legacy_stream": lambda: runtime.cudaMemsetAsync(p, 0, 64, None),
             "synchronize_from_another_thread": lambda: in_thread(lambda: runtime.cudaStreamSynchronize(stream)),
             }[forbidden]()
        assert e == CAPTURE_UNSUPPORTED
        assert runtime.cudaStreamEndCapture(stream, ctypes.byref(graph)) == CAPTURE_INVALIDATED
        assert graph.value is None
    finally:
        runtime.cudaFree(p)
        runtime.cudaFree(q)
        runtime.cudaStreamDestroy(stream)
        runtime.cudaGetLastError()


def test_a_captured_graph_replays_its_work(runtime):
    """What a capture records, from any thread, runs at each launch of the
    graph, not before; a replay into memory freed since fails."""
    stream, graph, exec_ = ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    a, b = ctypes.c_void_p(), ctypes.c_void_p()
    assert runtime.cudaStreamCreateWithFlags(ctypes.byref(stream), 1) == 0
    for p in (a, b):
        assert runtime.cudaMalloc(ctypes.byref(p), 16) == 0
    x, out = np.arange(16, dtype=np.uint8), np.zeros(16, np.uint8)
    try:
        assert runtime.cudaMemcpyAsync(a, x.ctypes.data, 16, MEMCPY["to_device"], stream) == 0
        assert runtime.cudaMemsetAsync(b, 7, 16, stream) == 0
        assert runtime.cudaStreamBeginCapture(stream, 1) == 0
        assert in_thread(lambda: runtime.cudaMemcpyAsync(b, a, 16, MEMCPY["on_device"], stream)) == 0
        assert runtime.cudaStreamEndCapture(stream, ctypes.byref(graph)) == 0
        assert runtime.cudaMemcpyAsync(out.ctypes.data, b, 16, MEMCPY["to_host"], stream) == 0
        assert (out == 7).all()  # captured, not run
        assert runtime.cudaGraphInstantiate(ctypes.byref(exec_), graph, 0) == 0
        assert runtime.cudaGraphLaunch(exec_, stream) == 0
        assert runtime.cudaMemcpyAsync(out.ctypes.data, b, 16, MEMCPY["to_host"], stream) == 0
        assert (out == x).all()
        assert runtime.cudaFree(b) == 0
        b.value = None
        assert runtime.cudaGraphLaunch(exec_, stream) == INVALID_VALUE
    finally:
        runtime.cudaGraphExecDestroy(exec_)
        runtime.cudaGraphDestroy(graph)
        for p in (a, b):
            runtime.cudaFree(p)
        runtime.cudaStreamDestroy(stream)
        runtime.cudaGetLastError()


@pytest.mark.parametrize("in_struct", [False, True], ids=["direct", "in_struct"])
def test_a_kernel_must_be_given_memory_of_its_device(runtime, in_struct):
    """A host pointer, or another GPU's memory, as a kernel's argument fails
    the launch (a GPU would fault), whether passed as it is or in a struct."""
    mine, other = ctypes.c_void_p(), ctypes.c_void_p()
    assert runtime.cudaSetDevice(1) == 0
    assert runtime.cudaMalloc(ctypes.byref(other), 128) == 0
    assert runtime.cudaSetDevice(0) == 0
    assert runtime.cudaMalloc(ctypes.byref(mine), 256) == 0
    x, out = np.arange(32, dtype=np.float32), np.zeros(32, np.float32)
    try:
        assert runtime.cudaMemcpyAsync(mine, x.ctypes.data, 128, MEMCPY["to_device"], None) == 0
        assert runtime.hi_emu_probe_copy(mine, mine.value + 128, int(in_struct)) == 0
        assert runtime.cudaMemcpyAsync(out.ctypes.data, mine.value + 128, 128, MEMCPY["to_host"], None) == 0
        assert (out == x).all()
        for src, dst, why in ((mine, out.ctypes.data, b"is not device memory"),
                              (other, mine, b"is memory of device 1")):
            assert runtime.hi_emu_probe_copy(src, dst, int(in_struct)) == INVALID_VALUE
            assert why in runtime.cudaGetErrorString(INVALID_VALUE)
    finally:
        runtime.cudaFree(mine)
        runtime.cudaFree(other)
        runtime.cudaGetLastError()


def test_a_kernel_must_run_on_a_stream_of_its_device(runtime):
    streams = [ctypes.c_void_p(), ctypes.c_void_p()]
    for device, stream in enumerate(streams):
        assert runtime.cudaSetDevice(device) == 0
        assert runtime.cudaStreamCreateWithFlags(ctypes.byref(stream), 1) == 0
    try:
        assert runtime.hi_emu_probe_empty(streams[1]) == 0  # device 1 is current
        assert runtime.cudaSetDevice(0) == 0
        assert runtime.hi_emu_probe_empty(streams[0]) == 0
        assert runtime.hi_emu_probe_empty(streams[1]) == INVALID_RESOURCE_HANDLE
        assert b"on a stream of device 1 while device 0 is current" in \
            runtime.cudaGetErrorString(INVALID_RESOURCE_HANDLE)
    finally:
        for stream in streams:
            runtime.cudaStreamDestroy(stream)
        runtime.cudaSetDevice(0)
        runtime.cudaGetLastError()


def test_the_cuda_tests_pass_on_the_emulated_plugin(plugin):
    """Every test that takes cuda:N, on the emulation of two GPUs (the op
    tests run on each, the model tests split over both): all pass, none skips."""
    env = {**os.environ, "HETINFER_TEST_CUDA": "emulated", "HI_EMU_PLUGIN": str(plugin), "HI_EMU_DEVICES": "2"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "cuda", "-rfEs",
           str(TESTS / "test_ops.py"), str(TESTS / "test_device_models.py")]

    def run(*extra: str) -> tuple[str, dict[str, int]]:
        r = subprocess.run([*cmd, *extra], cwd=TESTS.parent, env=env, capture_output=True, text=True, timeout=1500)
        assert r.returncode == 0, f"{' '.join(cmd)} failed:\n{r.stdout[-6000:]}\n{r.stderr[-3000:]}"
        summary = r.stdout.strip().splitlines()[-1]
        return summary, {k: int(n) for n, k in re.findall(r"(\d+)(?:/\d+)? (passed|skipped|failed|errors?|tests "
                                                           r"collected)", summary)}

    _, collected = run("--collect-only")  # "258/808 tests collected (550 deselected)"
    summary, counts = run()
    assert collected["tests collected"] > 200 and counts == {"passed": collected["tests collected"]}, summary
