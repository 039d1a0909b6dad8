"""Pipelined execution of a layer-split model: a batch is cut into
micro-batches, and while stage k works on micro-batch i+1, stage k+1 works on
micro-batch i, each stage on its own device and its own host thread.

Micro-batches go through each stage in order, so a later micro-batch of a
sequence sees the KV cells an earlier one wrote; and on the CPU and SYCL a
token's result does not depend on what shares its batch (csrc/cpu/flash_attn.h),
so pipelined output is bit-identical to the sequential one. On CUDA a batch's
size picks kernels (the matvec up to 16 tokens, split attention over long
caches), so micro-batches of up to 16 tokens may differ in rounding.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np

from ..planner import layer_ranges


class Pipeline:
    """One worker thread per stage; the stages' native forward releases the GIL."""

    def __init__(self, stages: list):
        self.stages = stages
        self._workers = [ThreadPoolExecutor(1, thread_name_prefix=f"hetinfer-stage{k}") for k in range(len(stages))]

    def run(self, hidden: list[np.ndarray], seq: list[np.ndarray], pos: list[np.ndarray],
            wanted: list[np.ndarray | None]) -> list[np.ndarray]:
        """hidden[i]: (n_i, n_embd) inputs of micro-batch i with its seq/pos
        (n_i,) and the rows of it whose states are wanted (Model.decode; None:
        all); returns each micro-batch's output of the last stage."""
        last: list[Future] = []
        for h, s, p, w in zip(hidden, seq, pos, wanted):
            fut: Future | None = None
            for k, stage in enumerate(self.stages):
                # Stage k's worker takes micro-batches in submission order; each waits for its input.
                rows = w if k == len(self.stages) - 1 else None
                fut = self._workers[k].submit(_forward, stage, fut, h, s, p, rows)
            last.append(fut)
        wait(last)  # every micro-batch has left every stage before an error is raised: the caches are quiet
        return [f.result() for f in last]

    def close(self) -> None:
        for w in self._workers:
            w.shutdown(wait=True)


def _forward(stage, previous: Future | None, hidden: np.ndarray, seq: np.ndarray, pos: np.ndarray,
             wanted: np.ndarray | None) -> np.ndarray:
    return stage.forward(hidden if previous is None else previous.result(), seq, pos, wanted)


def split_batch(n: int, parts: int) -> list[slice]:
    """[0, n) cut into at most `parts` consecutive, near-equal slices."""
    return [slice(first, last) for first, last in layer_ranges([1] * max(1, min(parts, n)), n)]
