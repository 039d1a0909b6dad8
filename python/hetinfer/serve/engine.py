"""Continuous batching for one model: the slots of a model advance together,
one decode step at a time, and new requests join between steps.

The engine owns its Model and runs it on one thread. Each step builds one
batch: a token for every slot that is generating, then prompt chunks of slots
still reading their prompt, up to n_batch tokens; one forward pass, one head
over the rows that need logits, one sample per such row. Requests talk to the
engine through Job objects; results go back through the job's ``emit``, which
the server turns into an asyncio queue.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..model.generate import Generation, SequenceDecoder
from ..sampling import SamplingParams


class QueueFull(Exception):
    """The engine's waiting queue is full: try again later."""


@dataclass(frozen=True)
class Event:
    """What a job hears: "text" (a piece), "done" (finished; see job.result) or "error" (message)."""

    kind: str
    text: str = ""


@dataclass(eq=False)
class Job:
    """One request's generation."""

    prompt_ids: list[int]
    params: SamplingParams
    max_tokens: int
    stop: list[str]
    emit: Callable[[Event], None]  # called on the engine thread; must not block
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    result: Generation = field(default_factory=Generation)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)


class Slot:
    """One sequence of the model's KV cache (seq id = slot index) and the job using it."""

    def __init__(self, index: int):
        self.index = index
        self.job: Job | None = None
        self.decoder: SequenceDecoder | None = None
        self.prompt_done = 0      # prompt tokens already in the KV cache
        self.last_token = 0.0     # perf_counter of the last sampled token (0: none yet)

    @property
    def reading_prompt(self) -> bool:
        return self.job is not None and self.prompt_done < len(self.job.prompt_ids)

    def info(self) -> dict:
        job = self.job
        return {"id": self.index, "state": "idle" if job is None else "processing",
                "task_id": job.id if job else None,
                "n_prompt_tokens": len(job.prompt_ids) if job else 0,
                "n_prompt_tokens_processed": self.prompt_done if job else 0,
                "n_decoded": len(job.result.tokens) if job else 0,
                "n_past": self.decoder.n_past if job and self.decoder else 0}


class Engine:
    """Serves one loaded model with ``model.n_parallel`` slots on a thread of its own."""

    def __init__(self, model, *, name: str, max_queue: int = 64, context_shift: bool = False, metrics=None):
        self.model, self.name, self.max_queue, self.context_shift = model, name, max_queue, context_shift
        self.metrics = metrics  # hetinfer.serve.metrics.ModelMetrics or None
        self.slots = [Slot(i) for i in range(model.n_parallel)]
        self.last_error: str | None = None
        self._waiting: deque[Job] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=f"hetinfer-engine-{name}", daemon=True)
        self._thread.start()

    # -- called from any thread -------------------------------------------------

    def submit(self, job: Job) -> None:
        """Queues a job; raises QueueFull when max_queue jobs already wait."""
        with self._cond:
            if self._closing:
                raise RuntimeError(f"model {self.name} is shutting down")
            if len(self._waiting) >= self.max_queue:
                raise QueueFull(f"{len(self._waiting)} requests are already waiting for {self.name}")
            self._waiting.append(job)
            self._cond.notify()
        self._update_gauges()

    @property
    def n_waiting(self) -> int:
        return len(self._waiting)

    @property
    def n_running(self) -> int:
        return sum(s.job is not None for s in self.slots)

    def slots_info(self) -> list[dict]:
        return [s.info() for s in self.slots]

    def close(self) -> None:
        """Stops the engine thread; jobs still queued or running get an error."""
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join()
        self.model.close()

    # -- the engine thread ------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing and not self._waiting and self.n_running == 0:
                    self._cond.wait()
                if self._closing:
                    break
                self._admit()
            self._update_gauges()  # admitted jobs wait no more, though the step may take a while
            self._drop_cancelled()
            if self.n_running:
                self._step()
            self._update_gauges()
        for job in [*self._waiting, *(s.job for s in self.slots if s.job)]:
            self._send(job, Event("error", "the server is shutting down"))

    def _admit(self) -> None:
        """Moves waiting jobs into free slots (under the lock)."""
        for slot in self.slots:
            while slot.job is None and self._waiting:
                job = self._waiting.popleft()
                if job.cancelled.is_set():
                    continue
                try:
                    decoder = SequenceDecoder(self.model, job.prompt_ids, job.params, job.max_tokens, job.stop,
                                              slot.index, job.result, self.context_shift)
                except (TypeError, ValueError) as e:  # the routes check requests; this keeps the thread alive
                    self._send(job, Event("error", str(e)))
                    continue
                self.model.remove_sequence(slot.index)
                slot.job, slot.decoder, slot.prompt_done, slot.last_token = job, decoder, 0, 0.0
                if self.metrics:
                    self.metrics.queue_wait(time.perf_counter() - job.submitted)

    def _drop_cancelled(self) -> None:
        for slot in self.slots:
            if slot.job is not None and (slot.job.cancelled.is_set() or slot.decoder.done):
                if slot.decoder.done and not slot.job.cancelled.is_set():
                    self._send(slot.job, Event("done"))  # max_tokens=0: nothing to generate
                self._free(slot)

    def _free(self, slot: Slot) -> None:
        if self.metrics:
            self.metrics.generated_tokens(len(slot.job.result.tokens))
        self.model.remove_sequence(slot.index)
        slot.job = slot.decoder = None

    def _batch(self) -> tuple[list[int], list[int], list[int], list[tuple[Slot, int]]]:
        """Token ids, sequence ids and positions of this step, and (slot, row) of rows that need logits."""
        ids: list[int] = []
        seq: list[int] = []
        pos: list[int] = []
        wants: list[tuple[Slot, int]] = []
        for slot in self.slots:  # every generating slot advances by one token
            if slot.job is not None and not slot.reading_prompt:
                token, p = slot.decoder.next_input()
                wants.append((slot, len(ids)))
                ids.append(token), seq.append(slot.index), pos.append(p)
        for slot in self.slots:  # prompts fill the rest of the batch
            room = self.model.n_batch - len(ids)
            if slot.reading_prompt and room > 0:
                chunk = slot.job.prompt_ids[slot.prompt_done:slot.prompt_done + room]
                ids += chunk
                seq += [slot.index] * len(chunk)
                pos += range(slot.prompt_done, slot.prompt_done + len(chunk))
                slot.prompt_done += len(chunk)
                if not slot.reading_prompt:
                    wants.append((slot, len(ids) - 1))
                    if self.metrics:
                        self.metrics.prompt_tokens(len(slot.job.prompt_ids))
        return ids, seq, pos, wants

    def _step(self) -> None:
        stepping = [s for s in self.slots if s.job is not None]
        try:
            ids, seq, pos, wants = self._batch()
            hidden = self.model.decode(np.array(ids, np.int32), np.array(seq, np.int32), np.array(pos, np.int32),
                                       wanted=[row for _, row in wants])  # rows in batch order, as _batch adds them
            logits = self.model.head(hidden) if wants else None
            for i, (slot, _) in enumerate(wants):
                self._sampled(slot, slot.decoder.accept(logits[i]))
        except Exception as e:  # a failing step fails its requests, not the server
            self.last_error = f"{type(e).__name__}: {e}"
            for slot in stepping:
                if slot.job is not None:
                    self._send(slot.job, Event("error", f"model {self.name} failed: {self.last_error}"))
                    self._free(slot)

    def _sampled(self, slot: Slot, piece: str) -> None:
        now = time.perf_counter()
        job = slot.job
        if self.metrics:
            if slot.last_token:
                self.metrics.inter_token(now - slot.last_token)
            else:
                self.metrics.first_token(now - job.submitted)
        slot.last_token = now
        if piece:
            self._send(job, Event("text", piece))
        if slot.decoder.done:
            self._send(job, Event("done"))
            self._free(slot)

    def _send(self, job: Job, event: Event) -> None:
        try:
            job.emit(event)
        except RuntimeError:  # the request's event loop is gone (server stopping)
            job.cancelled.set()

    def _update_gauges(self) -> None:
        if self.metrics:
            self.metrics.state(self.n_running, self.n_waiting, self.model.used_cells / self.model.n_cells)
