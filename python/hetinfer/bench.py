"""`hetinfer bench`: llama-bench-style prompt-processing (pp) and
text-generation (tg) throughput, median over repeats with the spread."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import numpy as np

from .model import Model


@dataclass
class BenchResult:
    test: str                 # "pp512", "tg128"
    n_tokens: int
    tokens_per_second: float  # median over repeats
    stddev: float             # of tokens per second over repeats
    samples: list[float]      # tokens per second of each repeat

    def to_dict(self) -> dict:
        return asdict(self)


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _summarise(test: str, n: int, seconds: list[float]) -> BenchResult:
    tps = [n / s for s in seconds]
    return BenchResult(test, n, statistics.median(tps), statistics.stdev(tps) if len(tps) > 1 else 0.0, tps)


def bench_prompt(model: Model, n_prompt: int, repeats: int, rng: np.random.Generator) -> BenchResult:
    """Prefill n_prompt random tokens into an empty sequence (logits of the last), as llama-bench's pp."""
    tokens = rng.integers(0, model.n_vocab, n_prompt)
    seconds = []
    for _ in range(repeats + 1):  # the first run warms caches and is dropped
        model.remove_sequence(0)
        seconds.append(_timed(lambda: model.prefill(tokens, 0)))
    model.remove_sequence(0)
    return _summarise(f"pp{n_prompt}", n_prompt, seconds[1:])


def bench_generate(model: Model, n_gen: int, repeats: int, rng: np.random.Generator) -> BenchResult:
    """Decode n_gen tokens one at a time from an empty sequence, logits each step, as llama-bench's tg."""
    tokens = rng.integers(0, model.n_vocab, n_gen)

    def run() -> None:
        for i, t in enumerate(tokens):
            model.prefill([int(t)], 0, start=i)

    seconds = []
    for _ in range(repeats + 1):
        model.remove_sequence(0)
        seconds.append(_timed(run))
    model.remove_sequence(0)
    return _summarise(f"tg{n_gen}", n_gen, seconds[1:])


def run_bench(model: Model, *, n_prompt: int = 512, n_gen: int = 128, repeats: int = 5,
              seed: int = 0) -> list[BenchResult]:
    rng = np.random.default_rng(seed)
    results = []
    if n_prompt > 0:
        results.append(bench_prompt(model, n_prompt, repeats, rng))
    if n_gen > 0:
        results.append(bench_generate(model, n_gen, repeats, rng))
    return results
