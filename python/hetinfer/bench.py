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


def bench_generate(model: Model, n_gen: int, repeats: int, rng: np.random.Generator,
                   n_seq: int = 1) -> BenchResult:
    """Decode n_gen tokens one at a time from an empty sequence, logits each step, as llama-bench's tg.
    n_seq > 1: as many sequences decode side by side, one token each per step (a server's
    parallel slots); the rate counts every sequence's tokens."""
    tokens = rng.integers(0, model.n_vocab, (n_gen, n_seq))
    seqs = np.arange(n_seq, dtype=np.int32)

    def run() -> None:
        for i in range(n_gen):
            hidden = model.decode(tokens[i], seqs, np.full(n_seq, i, np.int32))
            model.head(hidden)

    def clear() -> None:
        for s in range(n_seq):
            model.remove_sequence(s)

    seconds = []
    for _ in range(repeats + 1):
        clear()
        seconds.append(_timed(run))
    clear()
    return _summarise(f"tg{n_gen}" + (f" x{n_seq}" if n_seq > 1 else ""), n_gen * n_seq, seconds[1:])


def run_bench(model: Model, *, n_prompt: int = 512, n_gen: int = 128, repeats: int = 5,
              parallel: tuple[int, ...] = (1,), seed: int = 0) -> list[BenchResult]:
    """pp n_prompt, then tg n_gen for each count of parallel sequences (at most model.n_parallel)."""
    rng = np.random.default_rng(seed)
    results = []
    if n_prompt > 0:
        results.append(bench_prompt(model, n_prompt, repeats, rng))
    if n_gen > 0:
        for n_seq in parallel:
            results.append(bench_generate(model, n_gen, repeats, rng, n_seq))
    return results
