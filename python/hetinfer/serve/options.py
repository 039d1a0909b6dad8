"""Server options: llama-server's flags, HETINFER_* environment variables for
each, and a models.toml for several models in one process."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..devices import parse_memory_caps, parse_ratio
from ..planner import SPLITS

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass
class ModelOptions:
    """One served model."""

    path: str | None = None            # None: the embedded Gemma 3 270M
    aliases: list[str] = field(default_factory=list)  # names clients ask for; default: the file's stem
    devices: list[str] | None = None  # None: the best available device
    split: str = "layer"               # "none", "layer" or "row" (see hetinfer.plan)
    tensor_split: list[float] | None = None  # layer ratio per device; None: by free memory
    max_memory: dict[str, str] | None = None  # cap per device, e.g. {"cpu": "6GiB"}
    n_ctx: int = 4096                  # tokens per slot
    n_parallel: int = 4                # slots
    n_batch: int = 512
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    context_shift: bool = False
    max_queue: int = 64                # requests waiting for a slot before 503


@dataclass
class Tier:
    """An alias of a model carrying its own defaults; request fields still win."""

    name: str
    model: str                         # an alias of a served model
    sampling: dict = field(default_factory=dict)  # request fields: temperature, top_p, ...
    max_tokens: int | None = None
    reasoning: bool | None = None      # the template's enable_thinking; None leaves the template's default


@dataclass
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    api_keys: list[str] = field(default_factory=list)
    threads: int | None = None
    models: list[ModelOptions] = field(default_factory=list)
    tiers: list[Tier] = field(default_factory=list)


def _env(name: str, default=None):
    return os.environ.get(f"HETINFER_{name}", default)


def _flag_env(name: str) -> bool:
    return _env(name, "").lower() in ("1", "true", "yes", "on")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m hetinfer.serve",
        description="An OpenAI-compatible server (POST /v1/chat/completions, /v1/completions; GET /v1/models, "
                    "/health, /metrics, /slots, /props; POST /tokenize, /detokenize). Every flag can also be set "
                    "by the environment variable shown with it.",
)
    a = p.add_argument
    a("-m", "--model", default=_env("MODEL"),
      help="path of a .gguf file; none: the embedded Gemma 3 270M [HETINFER_MODEL]")
    a("--alias", default=_env("ALIAS"), help="name clients use for the model (comma-separated for several); "
                                             "default: the file name without .gguf [HETINFER_ALIAS]")
    a("-c", "--ctx-size", type=int, default=int(_env("CTX_SIZE", 4096)),
      help="context of EACH slot in tokens: the KV cache holds ctx-size x parallel tokens "
           "(default: %(default)s) [HETINFER_CTX_SIZE]")
    a("-np", "--parallel", type=int, default=int(_env("PARALLEL", 4)),
      help="slots: requests generated at once, batched together each step (default: %(default)s) [HETINFER_PARALLEL]")
    a("-b", "--batch-size", type=int, default=int(_env("BATCH_SIZE", 512)),
      help="tokens per step at most (prompts are read in chunks of this) (default: %(default)s) [HETINFER_BATCH_SIZE]")
    a("-t", "--threads", type=int, default=int(_env("THREADS")) if _env("THREADS") else None,
      help="CPU threads (default: all cores) [HETINFER_THREADS]")
    a("-ctk", "--cache-type-k", default=_env("CACHE_TYPE_K", "f16"),
      help="K cache type: f16, q8_0, q4_0 or f32 (default: %(default)s) [HETINFER_CACHE_TYPE_K]")
    a("-ctv", "--cache-type-v", default=_env("CACHE_TYPE_V", "f16"),
      help="V cache type: f16, q8_0, q4_0 or f32 (default: %(default)s) [HETINFER_CACHE_TYPE_V]")
    a("-dev", "--device", default=_env("DEVICE"),
      help="devices, comma-separated, e.g. cpu or cpu:0,cpu:1 (default: the best available; "
           "`hetinfer devices` lists them) [HETINFER_DEVICE]")
    a("-sm", "--split-mode", choices=SPLITS, default=_env("SPLIT_MODE", "layer"),
      help="how a model spreads over several devices: layer (contiguous layers per device), none (one "
           "device) or row (each matrix by rows) (default: %(default)s) [HETINFER_SPLIT_MODE]")
    a("-ts", "--tensor-split", default=_env("TENSOR_SPLIT"),
      help="layer ratio per device, e.g. 3,1 (default: by free memory) [HETINFER_TENSOR_SPLIT]")
    a("--max-memory", default=_env("MAX_MEMORY"),
      help="cap devices' memory, e.g. cpu:0=6GiB,cpu:1=2GiB; the planner fits the model under "
           "it [HETINFER_MAX_MEMORY]")
    a("--context-shift", action="store_true", default=_flag_env("CONTEXT_SHIFT"),
      help="when a slot's context is full, drop the older half and go on; otherwise generation stops "
           "there (finish_reason length) [HETINFER_CONTEXT_SHIFT]")
    a("--queue-size", type=int, default=int(_env("QUEUE_SIZE", 64)),
      help="requests that may wait for a slot; more get 503 with Retry-After "
           "(default: %(default)s) [HETINFER_QUEUE_SIZE]")
    a("--host", default=_env("HOST", "127.0.0.1"), help="address to listen on (default: %(default)s) [HETINFER_HOST]")
    a("--port", type=int, default=int(_env("PORT", 8080)),
      help="port to listen on (default: %(default)s) [HETINFER_PORT]")
    a("--api-key", default=_env("API_KEY"),
      help="require 'Authorization: Bearer KEY' (comma-separated for several keys) [HETINFER_API_KEY]")
    a("--api-key-file", default=_env("API_KEY_FILE"), help="file with one API key per line [HETINFER_API_KEY_FILE]")
    a("--config", default=_env("CONFIG"),
      help="models.toml: several models with their own devices, slots, context and aliases, and tiers "
           "(see README); replaces the model flags above [HETINFER_CONFIG]")
    return p


def _api_keys(key: str | None, key_file: str | None) -> list[str]:
    keys = [k.strip() for k in (key or "").split(",") if k.strip()]
    if key_file:
        try:
            lines = Path(key_file).read_text().splitlines()
        except OSError as e:
            raise ValueError(f"cannot read --api-key-file: {e}") from None
        keys += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    return keys


def _positive(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def parse_options(argv: list[str] | None = None) -> ServerOptions:
    args = build_parser().parse_args(argv)
    if args.split_mode not in SPLITS:  # a HETINFER_SPLIT_MODE value argparse did not check
        raise ValueError(f"split mode must be one of {', '.join(SPLITS)}, got {args.split_mode!r}")
    opts = ServerOptions(host=args.host, port=args.port, api_keys=_api_keys(args.api_key, args.api_key_file),
                         threads=args.threads)
    if args.config:
        if args.model or args.alias:
            raise ValueError("give models either with -m/--alias or in --config, not both")
        opts.models, opts.tiers = load_config(args.config)
    else:
        opts.models = [ModelOptions(
            path=args.model, aliases=[a.strip() for a in (args.alias or "").split(",") if a.strip()],
            devices=[d.strip() for d in args.device.split(",") if d.strip()] if args.device else None,
            split=args.split_mode, tensor_split=parse_ratio(args.tensor_split) if args.tensor_split else None,
            max_memory=parse_memory_caps(args.max_memory) if args.max_memory else None,
            n_ctx=_positive(args.ctx_size, "-c"),
            n_parallel=_positive(args.parallel, "-np"), n_batch=_positive(args.batch_size, "-b"),
            cache_type_k=args.cache_type_k, cache_type_v=args.cache_type_v, context_shift=args.context_shift,
            max_queue=_positive(args.queue_size, "--queue-size"))]
    return opts


# models.toml keys -> ModelOptions fields, with the type each must have
_MODEL_KEYS = {"path": ("path", str), "alias": ("aliases", list), "devices": ("devices", list),
               "ctx_size": ("n_ctx", int), "parallel": ("n_parallel", int), "batch_size": ("n_batch", int),
               "cache_type_k": ("cache_type_k", str), "cache_type_v": ("cache_type_v", str),
               "context_shift": ("context_shift", bool), "queue_size": ("max_queue", int),
               "split": ("split", str), "tensor_split": ("tensor_split", list), "max_memory": ("max_memory", dict)}
_TIER_SAMPLING = {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "repeat_last_n",
                  "presence_penalty", "frequency_penalty", "seed"}


def load_config(path: str) -> tuple[list[ModelOptions], list[Tier]]:
    """Models and tiers of a models.toml: [[model]] tables and [[tier]] tables."""
    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ValueError(f"cannot read --config: {e}") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from None
    unknown = set(doc) - {"model", "tier"}
    if unknown:
        raise ValueError(f"{path}: unknown top-level keys {sorted(unknown)} (expected [[model]] and [[tier]])")
    models = [_model_table(t, f"{path}: model {i + 1}") for i, t in enumerate(doc.get("model", []))]
    if not models:
        raise ValueError(f"{path}: no [[model]] tables")
    tiers = [_tier_table(t, f"{path}: tier {i + 1}") for i, t in enumerate(doc.get("tier", []))]
    return models, tiers


def _model_table(table: dict, where: str) -> ModelOptions:
    m = ModelOptions()
    for key, value in table.items():
        if key not in _MODEL_KEYS:
            raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(_MODEL_KEYS)})")
        attr, kind = _MODEL_KEYS[key]
        if key == "alias" and isinstance(value, str):
            value = [value]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ValueError(f"{where}: {key} must be a {kind.__name__}, got {value!r}")
        if kind is int:
            _positive(value, f"{where}: {key}")
        setattr(m, attr, value)
    if not m.path:
        raise ValueError(f"{where}: path is required")
    return m


def _tier_table(table: dict, where: str) -> Tier:
    t = dict(table)
    name, model = t.pop("name", None), t.pop("model", None)
    if not isinstance(name, str) or not isinstance(model, str):
        raise ValueError(f"{where}: name and model (an alias) are required strings")
    max_tokens, reasoning = t.pop("max_tokens", None), t.pop("reasoning", None)
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int)):
        raise ValueError(f"{where}: max_tokens must be an integer")
    if reasoning is not None and not isinstance(reasoning, bool):
        raise ValueError(f"{where}: reasoning must be true or false")
    unknown = set(t) - _TIER_SAMPLING
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)} "
                         f"(sampling keys: {', '.join(sorted(_TIER_SAMPLING))})")
    return Tier(name=name, model=model, sampling=t, max_tokens=max_tokens, reasoning=reasoning)
