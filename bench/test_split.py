"""Split modes side by side: one device (none), layer split run stage after
stage, layer split pipelined, and row split, for prompt processing (pp) and
generation with 1 and 8 sequences (tg).

    pytest bench/test_split.py --benchmark-only --benchmark-autosave
    pytest bench/test_split.py --benchmark-only --benchmark-compare      # against the last saved run
    python bench/report_split.py .benchmarks/*/NNNN_*.json                # markdown table and plot

HETINFER_BENCH_MODEL picks the model (default: the embedded Gemma 3 270M);
HETINFER_BENCH_DEVICES the devices to split over (default: cpu:0,cpu:1, each
with half the cores as its own threads). Each case records in extra_info the
devices, split, micro-batches, and the hidden-state transfers and bytes per
token that crossed device boundaries.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import hetinfer

N_PROMPT, N_SEQ = 256, 8


def _devices() -> list[str]:
    return os.environ.get("HETINFER_BENCH_DEVICES", "cpu:0,cpu:1").split(",")


def _threads(devices: list[str]) -> dict[str, int]:
    cpus = [d for d in devices if d.startswith("cpu")]
    share = max(1, (os.cpu_count() or 1) // max(1, len(cpus)))
    return {d: share for d in cpus}


MODES = {
    "none": lambda d: {"devices": d[:1], "split": "none"},
    "layer": lambda d: {"devices": d, "split": "layer", "n_threads": _threads(d), "micro_batches": 1},
    "layer-pipelined": lambda d: {"devices": d, "split": "layer", "n_threads": _threads(d),
                                  "micro_batches": len(d)},
    "row": lambda d: {"devices": d, "split": "row", "n_threads": _threads(d)},
}


@pytest.fixture(scope="module")
def model_path() -> str:
    path = os.environ.get("HETINFER_BENCH_MODEL")
    if path:
        return path
    from hetinfer.cli import default_model_path

    return default_model_path()


@pytest.fixture(params=list(MODES), scope="module")
def model(request, model_path):
    try:
        m = hetinfer.load(model_path, n_ctx=N_PROMPT + 64, n_parallel=N_SEQ, n_batch=N_PROMPT,
                          **MODES[request.param](_devices()))
    except ValueError as e:
        pytest.skip(f"{request.param}: {e}")
    yield request.param, m
    m.close()


def _record(benchmark, mode: str, m, n_tokens: int, before) -> None:
    rounds = max(1, benchmark.stats.stats.rounds) if benchmark.stats else 1
    count, nbytes = m.transfers.count - before[0], m.transfers.bytes - before[1]
    calls = rounds + 1  # pedantic's one warm-up round also moved data
    benchmark.extra_info.update({
        "mode": mode, "devices": ",".join(d.device for d in m.plan.devices if d.n_layers or d.row_share),
        "split": m.plan.split,
        "micro_batches": m.micro_batches, "tokens_per_call": n_tokens,
        "transfers_per_token": count / (calls * n_tokens), "transfer_bytes_per_token": nbytes / (calls * n_tokens)})


def test_pp(benchmark, model):
    mode, m = model
    ids = (np.arange(N_PROMPT) * 7 % m.n_vocab).astype(np.int32)

    def run():
        m.remove_sequence(0)
        m.decode(ids, np.zeros(N_PROMPT, np.int32), np.arange(N_PROMPT, dtype=np.int32))

    before = (m.transfers.count, m.transfers.bytes)
    benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    _record(benchmark, mode, m, N_PROMPT, before)


@pytest.mark.parametrize("n_seq", [1, N_SEQ])
def test_tg(benchmark, model, n_seq):
    mode, m = model
    for s in range(N_SEQ):
        m.remove_sequence(s)
        m.prefill([1 + s, 2, 3, 4], seq_id=s)
    seq = np.arange(n_seq, dtype=np.int32)
    step = {"pos": 4}

    def run():  # one generation step: a token per sequence
        m.decode(np.full(n_seq, 5, np.int32), seq, np.full(n_seq, step["pos"], np.int32))
        step["pos"] += 1

    before = (m.transfers.count, m.transfers.bytes)
    benchmark.pedantic(run, rounds=20, warmup_rounds=1)
    _record(benchmark, mode, m, n_seq, before)
