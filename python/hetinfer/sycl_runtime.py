"""The SYCL runtime from PyPI: where it is, what it needs before it starts,
and the devices it sees.

``pip install "hetinfer[sycl]"`` brings intel-sycl-rt (libsycl), intel-opencl-rt
(the OpenCL CPU device every x86 machine has) and dpctl (device listing). The
SYCL backend itself is ``libhetinfer_sycl.so`` next to ``_core``, loaded only
when a sycl device is used, so without the runtime everything else works.
"""

from __future__ import annotations

import ctypes
import functools
import os
from pathlib import Path

from . import _core

PLUGIN = Path(_core.__file__).with_name("libhetinfer_sycl.so")
INSTALL_HINT = "pip install 'hetinfer[sycl]'"


def _installed_file(dist: str, filename: str) -> Path | None:
    """The path of a file an installed distribution ships, or None."""
    from importlib import metadata
    try:
        files = metadata.files(dist) or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name == filename:
            path = Path(f.locate()).resolve()
            if path.exists():
                return path
    return None


def cache_dir() -> Path:
    """Where built kernels are kept between processes (the runtime's persistent cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "hetinfer" / "sycl"


def prepare_environment() -> None:
    """Sets what the runtime reads when it starts, unless the user set it:
    OCL_ICD_FILENAMES (the wheel's ICD file names a path that does not exist)
    and the persistent kernel cache. Must run before the runtime starts."""
    if "OCL_ICD_FILENAMES" not in os.environ:
        icd = _installed_file("intel-opencl-rt", "libintelocl.so")
        if icd:
            os.environ["OCL_ICD_FILENAMES"] = str(icd)
    os.environ.setdefault("SYCL_CACHE_PERSISTENT", "1")
    os.environ.setdefault("SYCL_CACHE_DIR", str(cache_dir()))


def installed() -> bool:
    """Whether the sycl extra's packages are installed (they are in the test extra:
    then a SYCL runtime that does not work is an error, not a reason to skip)."""
    from importlib import metadata
    try:
        for dist in ("intel-sycl-rt", "intel-opencl-rt", "dpctl"):
            metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str:
    """Why sycl devices cannot be used ("" when they can), found once."""
    if not PLUGIN.exists():
        return ("this build of hetinfer has no SYCL backend: intel-sycl-rt's headers were not found when it was "
                "built (x86-64 Linux only); reinstall with HETINFER_SYCL=ON to see why")
    libsycl = _installed_file("intel-sycl-rt", "libsycl.so.9")
    if libsycl is None:
        return f"the SYCL runtime is not installed: {INSTALL_HINT}"
    from importlib.util import find_spec
    if find_spec("dpctl") is None:
        return f"dpctl is not installed: {INSTALL_HINT}"
    prepare_environment()
    try:
        ctypes.CDLL(str(libsycl), mode=ctypes.RTLD_GLOBAL)  # the plugin links it by soname
        if _core.plugin_device_count(str(PLUGIN)) == 0:
            return "the SYCL runtime sees no devices (no OpenCL CPU runtime or GPU driver)"
    except (OSError, RuntimeError) as e:
        return str(e)
    return ""


@functools.lru_cache(maxsize=1)
def devices() -> tuple:
    """dpctl's SYCL devices in the runtime's order (sycl:N is the Nth), listed
    once per process; () when unavailable."""
    if unavailable_reason():
        return ()
    import dpctl
    return tuple(dpctl.get_devices())


def make(index: int, name: str, cap: int):
    """The native device for sycl:index (its kernels built, or loaded from the cache)."""
    return _core.make_plugin_device(str(PLUGIN), index, name, cap)
