"""The models a server holds: loading them in the background, their state for
/health, and resolving the name a request asks for to a model and its tier."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from ..devices import best_device
from ..model import Model
from .engine import Engine
from .metrics import ServerMetrics
from .options import ModelOptions, ServerOptions, Tier
from .requests import ApiError


class ServedModel:
    """One model: its options, its state ("loading", "ready", "failed") and, once loaded, its engine."""

    def __init__(self, options: ModelOptions, path: str, metrics: ServerMetrics):
        self.options, self.path = options, path
        self.aliases = options.aliases or [Path(path).name.removesuffix(".gguf")]
        self.devices = options.devices or [best_device()]
        self.device = ",".join(self.devices)
        self.metrics = metrics.for_model(self.name, self.device)
        self.state, self.error = "loading", None
        self.engine: Engine | None = None
        self.created = int(time.time())

    @property
    def name(self) -> str:
        return self.aliases[0]

    def load(self) -> None:
        o = self.options
        try:
            model = Model(self.path, devices=self.devices, split=o.split, tensor_split=o.tensor_split,
                          max_memory=o.max_memory, n_ctx=o.n_ctx, n_batch=o.n_batch, n_parallel=o.n_parallel,
                          cache_type_k=o.cache_type_k, cache_type_v=o.cache_type_v, progress=False)
            self.engine = Engine(model, name=self.name, max_queue=o.max_queue, context_shift=o.context_shift,
                                 metrics=self.metrics)
            self.state = "ready"
        except Exception as e:  # the server keeps serving its other models and says why in /health
            self.state, self.error = "failed", f"{type(e).__name__}: {e}"

    def health(self) -> dict:
        out = {"state": self.state, "device": self.device}
        if self.error:
            out["error"] = self.error
        if self.engine and self.engine.last_error:
            out["last_request_error"] = self.engine.last_error
        return out

    def props(self) -> dict:
        m = self.engine.model if self.engine else None
        return {"model": self.name, "aliases": self.aliases, "model_path": self.path, "device": self.device,
                "state": self.state, "n_ctx": self.options.n_ctx, "n_ctx_is_per_slot": True,
                "total_slots": self.options.n_parallel, "kv_cells": self.options.n_ctx * self.options.n_parallel,
                "n_batch": self.options.n_batch, "cache_type_k": self.options.cache_type_k,
                "cache_type_v": self.options.cache_type_v, "context_shift": self.options.context_shift,
                "split": self.options.split, "tensor_split": self.options.tensor_split,
                "plan": m.plan.to_dict() if m else None,
                "n_vocab": m.n_vocab if m else None, "chat_template": m.chat_template.source if m else None}


class Registry:
    """Every served model and tier, by the names clients use."""

    def __init__(self, options: ServerOptions, paths: list[str], metrics: ServerMetrics):
        self.models = [ServedModel(o, p, metrics) for o, p in zip(options.models, paths)]
        self._names: dict[str, tuple[ServedModel, Tier | None]] = {}
        for m in self.models:
            for alias in m.aliases:
                self._add(alias, m, None)
        for tier in options.tiers:
            if tier.model not in self._names:
                raise ValueError(f"tier {tier.name!r} names model {tier.model!r}, which no model has as an alias")
            self._add(tier.name, self._names[tier.model][0], tier)
        self._loader = threading.Thread(target=self._load_all, name="hetinfer-loader", daemon=True)

    def _add(self, name: str, model: ServedModel, tier: Tier | None) -> None:
        if name in self._names:
            raise ValueError(f"the name {name!r} is used twice (aliases and tier names must be unique)")
        self._names[name] = (model, tier)

    def start_loading(self) -> None:
        self._loader.start()

    def _load_all(self) -> None:
        for m in self.models:  # one at a time: loading is bound by disk and memory bandwidth
            m.load()

    def names(self) -> list[tuple[str, ServedModel, Tier | None]]:
        return [(n, m, t) for n, (m, t) in self._names.items()]

    def resolve(self, name: str | None) -> tuple[ServedModel, Tier | None]:
        """The model (ready) and tier a request names; with one model a missing name means it."""
        if name is None:
            if len(self.models) > 1:
                raise ApiError(400, "model is required: this server has several (GET /v1/models)", param="model")
            model, tier = self.models[0], None
        elif name in self._names:
            model, tier = self._names[name]
        else:
            raise ApiError(404, f"the model {name!r} does not exist (GET /v1/models lists them)", param="model",
                           code="model_not_found")
        if model.state == "loading":
            raise ApiError(503, f"model {model.name} is loading", type="unavailable_error",
                           headers={"Retry-After": "5"})
        if model.state == "failed":
            raise ApiError(503, f"model {model.name} failed to load: {model.error}", type="unavailable_error")
        return model, tier

    def close(self) -> None:
        if self._loader.is_alive():
            self._loader.join()
        for m in self.models:
            if m.engine:
                m.engine.close()
