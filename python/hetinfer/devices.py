"""Device names, what each device has, and the native device objects.

Names: ``cpu`` (or ``cpu:N`` for several CPU devices sharing the machine, each
with its own threads and memory cap), ``cuda:N`` and ``sycl:N`` (the Nth device
of the SYCL runtime: an Intel GPU, or the OpenCL CPU device; see
sycl_runtime.py). A backend that cannot be used is listed with the reason.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from . import _core, cuda_runtime, sycl_runtime

_NAME = re.compile(r"^(cpu|cuda|sycl)(?::(\d+))?$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B?|B)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "B": 1, "K": 1e3, "KB": 1e3, "KIB": 2**10, "M": 1e6, "MB": 1e6, "MIB": 2**20, "G": 1e9, "GB": 1e9,
          "GIB": 2**30, "T": 1e12, "TB": 1e12, "TIB": 2**40}


class DeviceError(ValueError):
    """A device name that is malformed, unknown or not available."""


@dataclass(frozen=True)
class DeviceInfo:
    name: str            # "cpu", "cpu:1", "cuda:0", "sycl:0"
    kind: str            # "cpu", "cuda" or "sycl"
    total_memory: int    # bytes
    free_memory: int     # bytes, now
    memory_pool: str     # devices with the same pool share the same memory ("host" for CPU devices)
    description: str


def parse_name(name: str) -> tuple[str, int | None]:
    """("cpu", None) for "cpu", ("cuda", 1) for "cuda:1"; DeviceError otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"a device name must be a str such as 'cpu' or 'cuda:0', got {type(name).__name__}")
    m = _NAME.match(name.strip().lower())
    if not m:
        raise DeviceError(f"unknown device {name!r}: devices are named cpu, cpu:N, cuda:N or sycl:N")
    return m.group(1), None if m.group(2) is None else int(m.group(2))


def host_memory() -> tuple[int, int]:
    """(total, available) bytes of host memory."""
    try:
        fields = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, value = line.split(":", 1)
                fields[key] = int(value.split()[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
    except (OSError, KeyError, ValueError):
        page = os.sysconf("SC_PAGE_SIZE")
        return os.sysconf("SC_PHYS_PAGES") * page, os.sysconf("SC_AVPHYS_PAGES") * page


def device_info(name: str) -> DeviceInfo:
    """What a device has; DeviceError naming the reason when it is not available."""
    kind, index = parse_name(name)
    if kind == "sycl":
        return _sycl_info(index)
    if kind == "cuda":
        return _cuda_info(index)
    total, free = host_memory()
    return DeviceInfo(name.strip().lower(), kind, total, free, "host", "CPU")


def _sycl_info(index: int | None) -> DeviceInfo:
    if index is None:
        raise DeviceError("SYCL devices are named sycl:N, such as sycl:0 (see `hetinfer devices`)")
    if why := sycl_runtime.unavailable_reason():
        raise DeviceError(f"device 'sycl:{index}' is not available: {why}")
    found = sycl_runtime.devices()
    if index >= len(found):
        raise DeviceError(f"device 'sycl:{index}' does not exist: the SYCL runtime sees {len(found)} device(s)")
    d = found[index]
    backend = d.backend.name.replace("backend_type.", "")
    total = int(d.global_mem_size)
    # A CPU device of the runtime holds its buffers in host memory, beside the cpu devices'.
    pool, free = ("host", host_memory()[1]) if d.has_aspect_cpu else (f"sycl:{index}", total)
    return DeviceInfo(f"sycl:{index}", "sycl", total, min(free, total), pool,
                      f"{d.name} ({backend}, {d.max_compute_units} compute units)")


def _cuda_info(index: int | None) -> DeviceInfo:
    if index is None:
        raise DeviceError("CUDA devices are named cuda:N, such as cuda:0 (see `hetinfer devices`)")
    if why := cuda_runtime.unavailable_reason():
        raise DeviceError(f"device 'cuda:{index}' is not available: {why}")
    found = cuda_runtime.devices()
    if index >= len(found):
        raise DeviceError(f"device 'cuda:{index}' does not exist: the CUDA driver sees {len(found)} GPU(s)")
    d = found[index]
    return DeviceInfo(f"cuda:{index}", "cuda", d["total_memory"], cuda_runtime.free_memory(index), f"cuda:{index}",
                      f"{d['name']} ({d['detail']}, {d['compute_units']} SMs)")


def check_names(devices) -> list[str]:
    """Normalised, unique device names of a list; TypeError/DeviceError otherwise."""
    if isinstance(devices, str) or not isinstance(devices, (list, tuple)):
        raise TypeError("devices must be a list of device names such as ['cpu'] or ['cuda:0', 'sycl:0']")
    if not devices:
        raise ValueError("devices must name at least one device")
    names = [device_info(d).name for d in devices]
    if len(set(names)) != len(names):
        raise DeviceError(f"a device is named twice in {list(devices)}: use cpu:0, cpu:1, ... for several CPU devices")
    return names


def per_device(values: dict, names: list[str], arg: str, check) -> dict[str, object]:
    """{device name: check(value, label)} of a user's per-device dict, each key
    one of `names` (normalised: "CPU" and "cpu" are one device)."""
    out = {}
    for name, value in values.items():
        key = device_info(name).name
        if key not in names:
            raise ValueError(f"{arg} names {name!r}, which is not one of the devices {names}")
        out[key] = check(value, f"{arg}[{name!r}]")
    return out


def list_devices() -> list[tuple[str, DeviceInfo | None, str]]:
    """(name, info or None, why not available) for every backend."""
    out: list[tuple[str, DeviceInfo | None, str]] = [("cpu", device_info("cpu"), "")]
    for kind, runtime in (("cuda", cuda_runtime), ("sycl", sycl_runtime)):
        if why := runtime.unavailable_reason():
            out.append((f"{kind}:N", None, why))
        else:
            out += [(f"{kind}:{i}", device_info(f"{kind}:{i}"), "") for i in range(len(runtime.devices()))]
    return out


def best_device() -> str:
    """The device a model goes on when none is named: an NVIDIA GPU, else an Intel GPU, else
    the CPU (the SYCL runtime's OpenCL CPU device is slower than the native CPU backend)."""
    if cuda_runtime.devices():
        return "cuda:0"
    gpus = [i for i, d in enumerate(sycl_runtime.devices()) if d.has_aspect_gpu]
    return f"sycl:{gpus[0]}" if gpus else "cpu"


def parse_size(value, what: str) -> int:
    """Bytes of an int or a string such as "6GiB", "512MiB", "1.5GB"."""
    if isinstance(value, bool):
        raise TypeError(f"{what} must be bytes or a size such as '6GiB', got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str) and (m := _SIZE.match(value)):
        n = int(float(m.group(1)) * _UNITS[(m.group(2) or "").upper()])
    else:
        raise ValueError(f"{what} must be bytes or a size such as '6GiB', '512MiB' or '1.5GB', got {value!r}")
    if n <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return n


def parse_ratio(text: str) -> list[float]:
    """A --tensor-split value: "3,2" or "3/2" -> [3.0, 2.0] (checked by the planner)."""
    try:
        return [float(v) for v in text.replace("/", ",").split(",")]
    except ValueError:
        raise ValueError(f"a tensor split is numbers such as 3,2; got {text!r}") from None


def parse_device_threads(text: str) -> dict[str, int]:
    """A --device-threads value: "cpu:0=6,cpu:1=2" -> {"cpu:0": 6, "cpu:1": 2}."""
    out = {}
    for name, value in _device_pairs(text, "a device's threads are DEVICE=N such as cpu:0=4").items():
        if not value.isdigit() or int(value) < 1:
            raise ValueError(f"a device's threads are a positive count such as cpu:0=4; got {name}={value}")
        out[name] = int(value)
    return out


def _device_pairs(text: str, expected: str) -> dict[str, str]:
    out = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not name or not value:
            raise ValueError(f"{expected}; got {item!r}")
        out[name] = value
    return out


def parse_memory_caps(text: str) -> dict[str, str]:
    """A --max-memory value: "cpu=6GiB,cuda:0=20GiB" -> {"cpu": "6GiB", "cuda:0": "20GiB"}."""
    return _device_pairs(text, "a memory cap is DEVICE=SIZE such as cpu=6GiB")


def make_device(name: str, n_threads: int = 0, cap: int = 0):
    """The native device object for a name (see csrc/device); DeviceError when not available.
    n_threads applies to CPU devices (0: the process-wide pool)."""
    info = device_info(name)
    if info.kind == "sycl":
        return sycl_runtime.make(parse_name(info.name)[1], info.name, cap)
    if info.kind == "cuda":
        return cuda_runtime.make(parse_name(info.name)[1], info.name, cap)
    return _core.CpuDevice(info.name, n_threads, cap)
