"""`hetinfer bench`: llama-bench-style prompt-processing (pp) and
text-generation (tg) throughput, median over repeats with the spread, from an
empty context or after `depth` tokens already in it (llama-bench's -d)."""

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


def _test_name(test: str, depth: int) -> str:
    return f"{test} @ d{depth}" if depth else test  # llama-bench's names


def _free(model: Model, n_seq: int, p0: int = 0) -> None:
    """Frees sequences 0 .. n_seq-1 from position p0 on."""
    for s in range(n_seq):
        model.remove_sequence(s, p0)


def _fill_context(model: Model, depth: int, n_seq: int, rng: np.random.Generator) -> None:
    """Sequences 0 .. n_seq-1 hold `depth` random tokens each, untimed; the
    tests append after them, and each repeat frees only what it appended."""
    _free(model, n_seq)
    for s in range(n_seq if depth else 0):
        model.prefill(rng.integers(0, model.n_vocab, depth), s)


def bench_prompt(model: Model, n_prompt: int, repeats: int, rng: np.random.Generator,
                 depth: int = 0) -> BenchResult:
    """Prefill n_prompt random tokens into a sequence of `depth` tokens (logits of the last), as llama-bench's pp."""
    tokens = rng.integers(0, model.n_vocab, n_prompt)
    _fill_context(model, depth, 1, rng)
    seconds = []
    for _ in range(repeats + 1):  # the first run warms caches and is dropped
        _free(model, 1, depth)
        seconds.append(_timed(lambda: model.prefill(tokens, 0, depth)))
    _free(model, 1)
    return _summarise(_test_name(f"pp{n_prompt}", depth), n_prompt, seconds[1:])


def bench_generate(model: Model, n_gen: int, repeats: int, rng: np.random.Generator,
                   n_seq: int = 1, depth: int = 0) -> BenchResult:
    """Decode n_gen tokens one at a time after `depth` tokens, logits each step, as llama-bench's tg.
    n_seq > 1: as many sequences decode side by side, one token each per step (a server's
    parallel slots), each after its own `depth` tokens; the rate counts every sequence's tokens."""
    tokens = rng.integers(0, model.n_vocab, (n_gen, n_seq))
    seqs = np.arange(n_seq, dtype=np.int32)

    def run() -> None:
        for i in range(n_gen):
            hidden = model.decode(tokens[i], seqs, np.full(n_seq, depth + i, np.int32))
            model.head(hidden)

    _fill_context(model, depth, n_seq, rng)
    seconds = []
    for _ in range(repeats + 1):
        _free(model, n_seq, depth)
        seconds.append(_timed(run))
    _free(model, n_seq)
    name = f"tg{n_gen}" + (f" x{n_seq}" if n_seq > 1 else "")
    return _summarise(_test_name(name, depth), n_gen * n_seq, seconds[1:])


def run_bench(model: Model, *, n_prompt: int = 512, n_gen: int = 128, repeats: int = 5,
              parallel: tuple[int, ...] = (1,), depth: int = 0, seed: int = 0) -> list[BenchResult]:
    """pp n_prompt, then tg n_gen for each count of parallel sequences (at most model.n_parallel),
    each after `depth` tokens already in its sequence (the context must hold depth + the test's tokens)."""
    rng = np.random.default_rng(seed)
    results = []
    if n_prompt > 0:
        results.append(bench_prompt(model, n_prompt, repeats, rng, depth))
    if n_gen > 0:
        for n_seq in parallel:
            results.append(bench_generate(model, n_gen, repeats, rng, n_seq, depth))
    return results
