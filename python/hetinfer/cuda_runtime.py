"""The CUDA backend: ``libhetinfer_cuda.so`` next to ``_core``, built when nvcc
was found at install time (HETINFER_CUDA=AUTO). It carries the CUDA runtime
(linked statically) and finds the NVIDIA driver when first used, so without a
driver or a GPU it loads and says why there is no device.
"""

from __future__ import annotations

import functools
from pathlib import Path

from . import _core

PLUGIN = Path(_core.__file__).with_name("libhetinfer_cuda.so")


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str:
    """Why cuda devices cannot be used ("" when they can), found once."""
    if not PLUGIN.exists():
        return ("this build of hetinfer has no CUDA backend: nvcc was not found when it was built; install the CUDA "
                "toolkit and reinstall (HETINFER_CUDA=ON makes a missing nvcc an error)")
    try:
        if _core.plugin_device_count(str(PLUGIN)) == 0:
            return "no NVIDIA GPU was found"
    except RuntimeError as e:
        return str(e)
    return ""


@functools.lru_cache(maxsize=1)
def devices() -> tuple:
    """What the driver says of each GPU, cuda:N the Nth ({name, total_memory,
    free_memory at the first listing, compute_units, detail}); () when unavailable."""
    if unavailable_reason():
        return ()
    return tuple(_core.describe_plugin_device(str(PLUGIN), i) for i in range(_core.plugin_device_count(str(PLUGIN))))


def free_memory(index: int) -> int:
    """Bytes free on cuda:index now."""
    return int(_core.describe_plugin_device(str(PLUGIN), index)["free_memory"])


def make(index: int, name: str, cap: int):
    """The native device for cuda:index."""
    return _core.make_plugin_device(str(PLUGIN), index, name, cap)
