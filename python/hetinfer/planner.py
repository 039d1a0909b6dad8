"""The memory planner: which layers go on which device and what each device
holds, in bytes, before anything is allocated.

``load()`` and ``hetinfer plan`` share it. Its figures come from the same
native functions that size the allocations (KV cache, stage workspace, output
head workspace), and the devices count what they really hold, so a test can
compare the plan with each device's high-water mark.

Layout: the token embedding goes with layer 0, the output head (final norm and
output matrix) with the last layer; a device that gets no layer holds nothing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from . import _core, quants
from .devices import DeviceInfo, check_names, device_info, parse_size, per_device
from .gguf_file import GGUFFile, open_gguf
from .model.arch import ArchConfig, arch_config
from .model.weights import layer_tensors, output_tensor, require_tensor

SPLITS = ("none", "layer", "row")
ROW_SPLIT = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")  # stage keys
CACHE_TYPES = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0"}


class PlanError(MemoryError):
    """A model does not fit the devices; ``plan`` holds the table and suggestions."""

    def __init__(self, plan: Plan):
        self.plan = plan
        tips = "\n".join(f"  - {s}" for s in plan.suggestions()) or "  - use a smaller model"
        super().__init__(f"the model does not fit the devices:\n{plan.to_table()}\nwhat would fit:\n{tips}")


@dataclass
class DevicePlan:
    device: str
    layers: tuple[int, int]      # [first, last) decoder layers on this device
    weights: int                 # bytes
    kv: int                      # bytes
    compute: int                 # bytes
    free: int                    # free memory now, bytes
    max_memory: int | None       # the user's cap, bytes
    embedding: bool = False      # holds the token embedding
    output: bool = False         # holds the output head
    row_share: float | None = None  # row split: this device's share of every matrix's rows

    @property
    def n_layers(self) -> int:
        return self.layers[1] - self.layers[0]

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.compute

    @property
    def limit(self) -> int:
        """Memory this device may use: its free memory, or less under max_memory."""
        return min(self.free, self.max_memory) if self.max_memory else self.free

    @property
    def fits(self) -> bool:
        return self.total <= self.limit


@dataclass
class Plan:
    model: str
    split: str
    n_ctx: int                   # per sequence
    n_parallel: int
    n_batch: int
    cache_type_k: str
    cache_type_v: str
    devices: list[DevicePlan]
    problems: list[str] = field(default_factory=list)  # what does not fit beyond single devices
    # What suggestions() re-plans with; not part of the plan's figures.
    _inputs: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def fits(self) -> bool:
        return not self.problems and all(d.fits for d in self.devices)

    @property
    def used(self) -> list[DevicePlan]:
        """The devices that hold layers, in layer order."""
        return [d for d in self.devices if d.n_layers]

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        for d, plan in zip(out["devices"], self.devices):
            d.update(total=plan.total, limit=plan.limit, fits=plan.fits)
        out["fits"] = self.fits
        return out

    def to_table(self) -> str:
        head = (f"{self.model}: split={self.split}, n_ctx={self.n_ctx} x {self.n_parallel} sequence(s), "
                f"KV cache {self.cache_type_k}/{self.cache_type_v}, n_batch={self.n_batch}")
        rows = [("device", "layers", "weights", "KV cache", "compute", "total", "free", "limit", "fits")]
        for d in self.devices:
            layers = f"{d.layers[0]}-{d.layers[1] - 1} ({d.n_layers})" if d.n_layers else "-"
            if d.row_share is not None:
                layers += f" rows {100 * d.row_share:.0f}%"
            extras = "+".join(x for x, on in (("embd", d.embedding), ("out", d.output)) if on)
            rows.append((d.device, layers + (f" +{extras}" if extras else ""), _size(d.weights), _size(d.kv),
                         _size(d.compute), _size(d.total), _size(d.free),
                         _size(d.limit) + (" (max_memory)" if d.max_memory and d.max_memory < d.free else ""),
                         "yes" if d.fits else "NO"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [head]
        for n, r in enumerate(rows):
            lines.append("| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                           for i, (c, w) in enumerate(zip(r, widths))) + " |")
            if n == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        lines += [f"note: {p}" for p in self.problems]
        return "\n".join(lines)

    def suggestions(self) -> list[str]:
        """Concrete changes that make this plan fit, each checked by planning again."""
        if self.fits or not self._inputs:
            return []
        base = self._inputs
        tries: list[tuple[str, dict]] = []
        n_ctx = self.n_ctx
        while n_ctx > 256:
            n_ctx //= 2
            tries.append((f"a smaller context: n_ctx={n_ctx}", {"n_ctx": n_ctx}))
        tries.append(("a q8_0 KV cache: cache_type_k='q8_0', cache_type_v='q8_0'",
                      {"cache_type_k": "q8_0", "cache_type_v": "q8_0"}))
        tries.append(("a q4_0 KV cache: cache_type_k='q4_0', cache_type_v='q4_0'",
                      {"cache_type_k": "q4_0", "cache_type_v": "q4_0"}))
        if len(self.devices) > 1 and self.split == "layer":
            ratio = _fitting_ratio(self)
            if ratio:
                tries.append((f"another ratio: tensor_split={ratio}", {"tensor_split": ratio}))
        out, seen = [], set()
        for text, change in tries:
            key = next(iter(change))
            if key in seen:
                continue  # the first (least drastic) fitting change of each kind is enough
            if _plan(**{**base, **change}).fits:
                out.append(text)
                seen.add(key)
        need = sum(d.total for d in self.devices)
        have = sum(d.limit for d in self.devices)
        if need > have:
            out.append(f"another device: the model needs {_size(need)} in all, the devices offer {_size(have)}")
        return out

    def check(self) -> Plan:
        """This plan, or PlanError with the table and suggestions when it does not fit."""
        if not self.fits:
            raise PlanError(self)
        return self


def _size(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def cache_type_id(name: str, arg: str) -> int:
    if not isinstance(name, str) or name.lower() not in CACHE_TYPES:
        raise ValueError(f"{arg} must be one of {', '.join(CACHE_TYPES)}, got {name!r}")
    return int(quants.qtype(CACHE_TYPES[name.lower()]))


def positive_int(value, arg: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{arg} must be positive, got {value}")
    return value


def _check_ratio(tensor_split, n_devices: int) -> list[float] | None:
    if tensor_split is None:
        return None
    if isinstance(tensor_split, str) or not isinstance(tensor_split, Sequence):
        raise TypeError("tensor_split must be a list of numbers, one per device, such as [3, 2]")
    if len(tensor_split) != n_devices:
        raise ValueError(f"tensor_split has {len(tensor_split)} values for {n_devices} devices")
    ratio = []
    for v in tensor_split:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValueError(f"tensor_split values must be finite numbers >= 0, got {list(tensor_split)}")
        ratio.append(float(v))
    if sum(ratio) <= 0:
        raise ValueError("tensor_split must give some device a positive share")
    return ratio


def _check_max_memory(max_memory, names: list[str]) -> dict[str, int]:
    if max_memory is None:
        return {}
    if not isinstance(max_memory, dict):
        raise TypeError("max_memory must be a dict such as {'cpu': '6GiB'}")
    return per_device(max_memory, names, "max_memory", parse_size)


def layer_ranges(ratio: Sequence[float], n_layer: int) -> list[tuple[int, int]]:
    """[first, last) per device: the bounds are the cumulative ratio's shares of
    n_layer, rounded; the same rule (csrc/model/row_split.h) cuts a row split's rows."""
    bounds = _core.split_rows(n_layer, [float(r) for r in ratio])
    return list(zip(bounds[:-1], bounds[1:]))


def _fitting_ratio(plan: Plan) -> list[int] | None:
    """Layers per device, filling each device in order with as many layers as
    fit in its limit and leaving the rest to the devices after it; None when
    no such ratio fits."""
    inputs = plan._inputs
    n_layer, n_dev = inputs["sizes"].config.n_layer, len(plan.devices)
    counts: list[int] = []
    for i in range(n_dev - 1):
        best = 0
        for c in range(n_layer - sum(counts), -1, -1):
            rest = n_layer - sum(counts) - c
            trial = _plan(**{**inputs, "tensor_split": counts + [c] + [rest] + [0] * (n_dev - i - 2)})
            if trial.devices[i].fits:
                best = c
                break
        counts.append(best)
    counts.append(n_layer - sum(counts))
    return counts if _plan(**{**inputs, "tensor_split": counts}).fits else None


@dataclass(frozen=True)
class ModelSizes:
    """What the planner needs of a model file, so a plan outlives the file."""
    name: str
    config: ArchConfig
    layer_weights: tuple[int, ...]  # bytes the stage places, per layer
    # Per layer, (rows, bytes per row) of each matrix a row split cuts (csrc/model/row_split.h).
    layer_matrices: tuple[tuple[tuple[int, int], ...], ...]
    embedding: int                  # token_embd bytes
    output: int                     # output matrix bytes (the embedding's when tied)
    output_norm: int
    output_type: int                # GGML type id of the output matrix
    tied: bool                      # the output matrix is the embedding

    @classmethod
    def of(cls, f: GGUFFile, config: ArchConfig) -> ModelSizes:
        embd, out = require_tensor(f, "token_embd.weight"), output_tensor(f)
        layers = [layer_tensors(f, il) for il in range(config.n_layer)]
        matrices = tuple(tuple((t.shape[0], t.nbytes // t.shape[0]) for key, t in ts.items() if key in ROW_SPLIT)
                         for ts in layers)
        return cls(os.path.basename(f.path), config, tuple(sum(t.nbytes for t in ts.values()) for ts in layers),
                   matrices, embd.nbytes, out.nbytes, require_tensor(f, "output_norm.weight").nbytes, int(out.type),
                   out is embd)


def _plan(*, sizes: ModelSizes, infos: list[DeviceInfo], split: str, tensor_split, n_ctx: int, n_parallel: int,
          cache_type_k: str, cache_type_v: str, n_batch: int, max_memory: dict[str, int]) -> Plan:
    inputs = dict(sizes=sizes, infos=infos, split=split, tensor_split=tensor_split, n_ctx=n_ctx,
                  n_parallel=n_parallel, cache_type_k=cache_type_k, cache_type_v=cache_type_v, n_batch=n_batch,
                  max_memory=max_memory)
    config = sizes.config
    k_type, v_type = cache_type_id(cache_type_k, "cache_type_k"), cache_type_id(cache_type_v, "cache_type_v")
    caps = [max_memory.get(i.name) for i in infos]
    if split == "none":
        ratio = [1.0] + [0.0] * (len(infos) - 1)
    else:
        ratio = tensor_split or [float(min(i.free_memory, c) if c else i.free_memory) for i, c in zip(infos, caps)]
    # Row split: the main device (the first) runs every layer; the others hold row slices.
    ranges = layer_ranges(ratio, config.n_layer) if split != "row" else \
        [(0, config.n_layer)] + [(0, 0)] * (len(infos) - 1)
    block = config.block_config()
    if split == "row":  # (bounds, bytes per row) of every matrix, and each device's row-split buffers
        cuts = [(_core.split_rows(rows, ratio), rb) for layer in sizes.layer_matrices for rows, rb in layer]
        row_buffers = _core.row_split_workspace_bytes(block, n_batch, ratio)
    devices = []
    for i, (info, cap, (first, last)) in enumerate(zip(infos, caps, ranges)):
        d = DevicePlan(info.name, (first, last), 0, 0, 0, info.free_memory, cap)
        if split == "row":
            d.row_share = ratio[i] / sum(ratio)
            d.weights = sum((b[i + 1] - b[i]) * rb for b, rb in cuts)
            d.compute = row_buffers[i]
            if i:
                devices.append(d)
                continue
            d.weights += sum(sizes.layer_weights) - sum(b[-1] * rb for b, rb in cuts)  # norms and biases
        if last > first:
            if split != "row":
                d.weights = sum(sizes.layer_weights[first:last])
            d.kv = _core.kv_cache_bytes(block, last - first, n_ctx * n_parallel, k_type, v_type)
            d.compute += _core.stage_workspace_bytes(block, n_batch, n_ctx * n_parallel)
            d.embedding = first == 0
            d.output = last == config.n_layer
            if d.embedding:
                d.weights += sizes.embedding
                d.compute += _core.embedding_workspace_bytes(config.n_embd, n_batch)
            if d.output:
                shared = d.embedding and sizes.tied  # one mapping on one device, counted once
                d.weights += sizes.output_norm + (0 if shared else sizes.output)
                d.compute += _core.head_workspace_bytes(sizes.output_type, config.n_embd, config.n_vocab, n_batch,
                                                        info.kind == "cpu")
        devices.append(d)
    problems = []
    pools: dict[str, list[int]] = {}
    for i, info in enumerate(infos):
        pools.setdefault(info.memory_pool, []).append(i)
    for pool, members in pools.items():
        need = sum(devices[i].total for i in members)
        free = infos[members[0]].free_memory
        if len(members) > 1 and need > free:
            problems.append(f"{', '.join(infos[i].name for i in members)} share {pool} memory: "
                            f"together they need {_size(need)}, {_size(free)} is free")
    return Plan(sizes.name, split, n_ctx, n_parallel, n_batch, cache_type_k.lower(),
                cache_type_v.lower(), devices, problems, inputs)


def plan_for(file: GGUFFile, config: ArchConfig, *, devices, split: str = "layer", tensor_split=None,
             n_ctx: int = 4096, n_parallel: int = 1, cache_type_k: str = "f16", cache_type_v: str = "f16",
             n_batch: int = 512, max_memory=None) -> Plan:
    """The plan of an open model file (what load() uses); arguments as plan()."""
    names = check_names(devices)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split == "row" and len(names) < 2:
        raise ValueError("split='row' cuts every matrix across two or more devices; got one")
    if split == "none" and len(names) > 1:
        raise ValueError(f"split='none' puts the whole model on one device, got {len(names)}: "
                         "use split='layer' to spread it, or load one model per device")
    for value, arg in ((n_ctx, "n_ctx"), (n_parallel, "n_parallel"), (n_batch, "n_batch")):
        positive_int(value, arg)
    return _plan(sizes=ModelSizes.of(file, config), infos=[device_info(n) for n in names], split=split,
                 tensor_split=_check_ratio(tensor_split, len(names)), n_ctx=n_ctx, n_parallel=n_parallel,
                 cache_type_k=cache_type_k, cache_type_v=cache_type_v, n_batch=n_batch,
                 max_memory=_check_max_memory(max_memory, names))


def plan(path: str | os.PathLike, *, devices=None, split: str = "layer", tensor_split=None, n_ctx: int = 4096,
         n_parallel: int = 1, cache_type_k: str = "f16", cache_type_v: str = "f16", n_batch: int = 512,
         max_memory=None) -> Plan:
    """Where a model would go and what each device would hold, without loading it.

    devices: names such as ["cpu"], ["cuda:0", "sycl:0"] (default ["cpu"]);
    split: "layer" (contiguous layers per device), "none" (one device) or "row";
    tensor_split: the layer ratio per device (default: free memory);
    n_ctx: context per sequence; n_parallel: sequences; max_memory: a cap per
    device, e.g. {"cpu": "6GiB"}. Plan.to_table() renders it; Plan.fits says
    whether it fits, Plan.suggestions() what would.
    """
    with open_gguf(path) as f:
        embd = require_tensor(f, "token_embd.weight")
        config = arch_config(f.metadata, n_vocab=embd.shape[0])
        return plan_for(f, config, devices=devices or ["cpu"], split=split, tensor_split=tensor_split, n_ctx=n_ctx,
                        n_parallel=n_parallel, cache_type_k=cache_type_k, cache_type_v=cache_type_v,
                        n_batch=n_batch, max_memory=max_memory)
