"""Prometheus metrics of the server, labelled by model and device (GET /metrics)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LABELS = ("model", "device")
# Seconds; first tokens include prompt processing, so their buckets reach further.
FIRST_TOKEN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
INTER_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.15, 0.25, 0.5, 1, 2.5)


class ServerMetrics:
    """One registry per server (tests run several servers in one process)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self):
        r = self.registry = CollectorRegistry()
        self.running = Gauge("hetinfer_requests_running", "Requests holding a slot", LABELS, registry=r)
        self.waiting = Gauge("hetinfer_requests_waiting", "Requests queued for a slot", LABELS, registry=r)
        self.kv_usage = Gauge("hetinfer_kv_cache_usage_ratio", "Used share of the KV cache cells", LABELS,
                              registry=r)
        self.prompt = Counter("hetinfer_prompt_tokens", "Prompt tokens processed", LABELS, registry=r)
        self.generated = Counter("hetinfer_generated_tokens", "Tokens generated", LABELS, registry=r)
        self.requests = Counter("hetinfer_requests", "Finished requests by outcome", (*LABELS, "outcome"),
                                registry=r)
        self.first_token = Histogram("hetinfer_time_to_first_token_seconds",
                                     "From arrival to the first generated token", LABELS,
                                     buckets=FIRST_TOKEN_BUCKETS, registry=r)
        self.inter_token = Histogram("hetinfer_inter_token_seconds", "Between consecutive tokens of a request",
                                     LABELS, buckets=INTER_TOKEN_BUCKETS, registry=r)
        self.queue_wait = Histogram("hetinfer_queue_wait_seconds", "From arrival to getting a slot", LABELS,
                                    buckets=FIRST_TOKEN_BUCKETS, registry=r)

    def for_model(self, model: str, device: str) -> ModelMetrics:
        return ModelMetrics(self, model, device)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class ModelMetrics:
    """The metrics of one model, labels bound; what the engine and the routes call."""

    def __init__(self, m: ServerMetrics, model: str, device: str):
        labels = {"model": model, "device": device}
        self._m, self._labels = m, labels
        self._running, self._waiting, self._kv = (g.labels(**labels) for g in (m.running, m.waiting, m.kv_usage))
        self._prompt, self._generated = m.prompt.labels(**labels), m.generated.labels(**labels)
        self._first, self._inter, self._queue = (h.labels(**labels) for h in (m.first_token, m.inter_token,
                                                                                m.queue_wait))

    def state(self, running: int, waiting: int, kv_usage: float) -> None:
        self._running.set(running)
        self._waiting.set(waiting)
        self._kv.set(kv_usage)

    def prompt_tokens(self, n: int) -> None:
        self._prompt.inc(n)

    def generated_tokens(self, n: int) -> None:
        self._generated.inc(n)

    def first_token(self, seconds: float) -> None:
        self._first.observe(seconds)

    def inter_token(self, seconds: float) -> None:
        self._inter.observe(seconds)

    def queue_wait(self, seconds: float) -> None:
        self._queue.observe(seconds)

    def finished(self, outcome: str, n: int = 1) -> None:
        """outcome: "ok", "error", "cancelled" or "rejected"."""
        self._m.requests.labels(**self._labels, outcome=outcome).inc(n)
