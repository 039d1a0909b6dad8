"""`hetinfer tune`: pick a layer-split ratio by measuring each device.

Each device runs the whole model alone on a prompt batch; its time per layer
is the stage time over the layer count. A pipelined layer split runs as fast
as its slowest stage, so the ratio gives each device layers in proportion to
its speed (1 / time per layer). `sweep` measures every split of two devices
end to end, to check the pick against the best one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from .model import Model
from .planner import layer_ranges


@dataclass
class DeviceTiming:
    device: str
    ms_per_layer: float  # median, for a batch of n_tokens prompt tokens


def _prompt_seconds(m: Model, n_tokens: int, repeats: int) -> float:
    ids = (np.arange(n_tokens) * 7 % m.n_vocab).astype(np.int32)
    seq, pos = np.zeros(n_tokens, np.int32), np.arange(n_tokens, dtype=np.int32)
    times = []
    for r in range(repeats + 1):  # the first run warms caches and is not counted
        m.remove_sequence(0)
        start = time.perf_counter()
        m.decode(ids, seq, pos)
        if r:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def _threads(n_threads: dict[str, int] | None, devices: list[str]) -> dict[str, int] | None:
    picked = {d: n for d, n in (n_threads or {}).items() if d in devices}
    return picked or None


def layer_timings(path: str, devices: list[str], *, n_threads: dict[str, int] | None = None, n_tokens: int = 128,
                  repeats: int = 3) -> list[DeviceTiming]:
    """Each device's time per layer for a batch of n_tokens prompt tokens."""
    out = []
    for d in devices:
        with Model(path, devices=[d], split="none", n_ctx=n_tokens, n_batch=n_tokens,
                   n_threads=_threads(n_threads, [d]), progress=False) as m:
            out.append(DeviceTiming(d, 1e3 * _prompt_seconds(m, n_tokens, repeats) / m.config.n_layer))
    return out


def ratio_for(timings: list[DeviceTiming], n_layer: int) -> list[int]:
    """Layers per device in proportion to speed, as whole layers."""
    speeds = [1.0 / t.ms_per_layer for t in timings]
    return [last - first for first, last in layer_ranges(speeds, n_layer)]


def sweep(path: str, devices: list[str], *, n_threads: dict[str, int] | None = None, n_tokens: int = 128,
          repeats: int = 3) -> list[tuple[list[int], float]]:
    """Pipelined prompt throughput (tokens/s) of every split [k, n_layer - k] of two devices."""
    if len(devices) != 2:
        raise ValueError("the sweep tries every split of exactly two devices")
    with Model(path, devices=devices[:1], split="none", n_ctx=8, n_batch=8, progress=False) as m:
        n_layer = m.config.n_layer
    out = []
    for k in range(1, n_layer):
        with Model(path, devices=devices, tensor_split=[k, n_layer - k], n_ctx=n_tokens, n_batch=n_tokens,
                   n_threads=_threads(n_threads, devices), micro_batches=2 * len(devices), progress=False) as m:
            out.append(([k, n_layer - k], n_tokens / _prompt_seconds(m, n_tokens, repeats)))
    return out
