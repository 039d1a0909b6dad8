"""Model: a GGUF model loaded for execution (CPU for now)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from .. import _core, quants
from ..devices import best_device, check_names, make_device, per_device
from ..planner import Plan, cache_type_id, plan_for, positive_int
from ..chat_template import ChatTemplate
from ..sampling import SamplingParams, check_logit_bias_ids
from ..tokenizer import Tokenizer
from . import chat as chat_format
from .generate import Generation, generate
from .pipeline import Pipeline, split_batch
from ..gguf_file import GGUFFile, open_gguf
from .arch import ArchConfig, arch_config
from .weights import layer_specs, output_tensor, prefetch, require_tensor, weight_spec


def _threads_per_device(n_threads, names: list[str]) -> dict[str, int]:
    """Thread count per CPU device: an int sets the process-wide pool that every
    CPU device shares (0 below); a dict gives a device its own pool."""
    if n_threads is None:
        return {}
    if isinstance(n_threads, dict):
        return per_device(n_threads, names, "n_threads", positive_int)
    quants.set_num_threads(positive_int(n_threads, "n_threads"))
    return {}


@dataclass
class Transfers:
    """Hidden states moved between devices at stage boundaries."""
    count: int = 0
    bytes: int = 0


class Model:
    """A loaded model. Use ``hetinfer.load(path, ...)``.

    ``n_ctx`` is the context of each sequence; the KV cache holds
    ``n_ctx * n_parallel`` cells shared by all sequences. ``plan`` says which
    layers went to which device and what each holds (see hetinfer.planner).
    """

    def __init__(self, path: str | os.PathLike, *, devices: Sequence[str] | None = None, split: str = "layer",
                 tensor_split: Sequence[float] | None = None, max_memory: dict | None = None, n_ctx: int = 4096,
                 n_batch: int = 512, n_parallel: int = 1, cache_type_k: str = "f16", cache_type_v: str = "f16",
                 n_threads: int | dict | None = None, micro_batches: int | None = None, seed: int | None = None,
                 progress: bool | None = None):
        names = check_names(devices if devices is not None else [best_device()])
        threads = _threads_per_device(n_threads, names)
        if micro_batches is not None:
            positive_int(micro_batches, "micro_batches")
        self.seed = seed
        self.n_ctx, self.n_parallel, self.n_batch = n_ctx, n_parallel, n_batch  # n_ctx: per sequence
        self.file: GGUFFile = open_gguf(path)
        try:
            embd = require_tensor(self.file, "token_embd.weight")
            self.config: ArchConfig = arch_config(self.file.metadata, n_vocab=embd.shape[0])
            self.plan: Plan = plan_for(self.file, self.config, devices=names, split=split, tensor_split=tensor_split,
                                       n_ctx=n_ctx, n_parallel=n_parallel, cache_type_k=cache_type_k,
                                       cache_type_v=cache_type_v, n_batch=n_batch, max_memory=max_memory).check()
            prefetch(self.file, progress)
            self._build(embd, threads)
        except BaseException:
            self.file.close()
            raise
        self._boundaries = Transfers()  # hidden states between layer-split stages
        # Pipelining: a batch goes through the stages in this many micro-batches (1: one after another).
        # By default one per stage, unless two stages would share the process-wide CPU pool: they would
        # take turns on it, and pipelining them measured slower (bench/RESULTS.md).
        shared = sum(1 for d in self.plan.used if d.device.startswith("cpu") and not threads.get(d.device)) > 1
        self.micro_batches = (1 if shared else len(self._stages)) if micro_batches is None else micro_batches
        self._pipeline = Pipeline(self._stages) if len(self._stages) > 1 and self.micro_batches > 1 else None

    def _build(self, embd, threads: dict[str, int]) -> None:
        """Devices, then the embedding, the stages and the head on them, as planned."""
        cfg, plan = self.config, self.plan
        self.devices = {d.device: make_device(d.device, threads.get(d.device, 0), d.max_memory or 0)
                        for d in plan.devices}
        used = plan.used
        k_type = cache_type_id(plan.cache_type_k, "cache_type_k")
        v_type = cache_type_id(plan.cache_type_v, "cache_type_v")
        self._embedding = _core.Embedding(self.devices[used[0].device], weight_spec(embd), cfg.embed_scale,
                                          self.n_batch)
        rows = {}
        if plan.split == "row":  # one stage on the main device; every device holds a slice of each matrix
            rows = {"row_devices": [self.devices[d.device] for d in plan.devices],
                    "row_shares": [d.row_share for d in plan.devices]}
        self._stages = [_core.Stage(self.devices[d.device], cfg.block_config(),
                                    layer_specs(self.file, cfg, *d.layers), self.n_cells, k_type, v_type,
                                    self.n_batch, **rows) for d in used]
        self._head = _core.OutputHead(self.devices[used[-1].device],
                                      weight_spec(require_tensor(self.file, "output_norm.weight")),
                                      weight_spec(output_tensor(self.file)), cfg.rms_eps, cfg.final_softcap,
                                      self.n_batch)

    @property
    def n_vocab(self) -> int:
        return self.config.n_vocab

    @property
    def n_cells(self) -> int:
        """KV cache cells of all sequences together (n_ctx * n_parallel)."""
        return self.n_ctx * self.n_parallel

    @property
    def used_cells(self) -> int:
        return self._stages[0].used_cells

    @property
    def transfers(self) -> Transfers:
        """Data moved between devices so far: hidden states at layer-split
        boundaries, inputs sent and slices gathered by a row split."""
        row = [stage.row_transfers for stage in self._stages]
        return Transfers(self._boundaries.count + sum(c for c, _ in row),
                         self._boundaries.bytes + sum(b for _, b in row))

    def memory(self) -> dict[str, dict]:
        """Per device: bytes in use and high-water marks by kind (weights, kv, compute, total)."""
        return {name: d.counters() for name, d in self.devices.items()}

    @property
    def n_params(self) -> int:
        return sum(t.n_elements for t in self.file.tensors.values())

    @property
    def size_bytes(self) -> int:
        return sum(t.nbytes for t in self.file.tensors.values())

    def check_tokens(self, tokens) -> np.ndarray:
        """tokens as int32 ids; TypeError/ValueError naming a bad one."""
        ids = np.asarray(tokens)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise TypeError("tokens must be a 1-D sequence of ints")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_vocab):
            bad = int(ids[(ids < 0) | (ids >= self.n_vocab)][0])
            raise ValueError(f"token id {bad} is outside the vocabulary [0, {self.n_vocab})")
        return ids.astype(np.int32)

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """(n, n_embd) input embeddings of token ids."""
        return self._embedding(ids)

    def head(self, hidden: np.ndarray) -> np.ndarray:
        """(n, n_vocab) logits of final hidden states (at most n_batch rows at a time)."""
        return np.concatenate([self._head(hidden[i:i + self.n_batch]) for i in range(0, len(hidden), self.n_batch)]) \
            if len(hidden) > self.n_batch else self._head(hidden)

    def decode(self, ids: np.ndarray, seq: np.ndarray, pos: np.ndarray, wanted=None) -> np.ndarray:
        """Runs a batch of at most n_batch tokens through every layer, stage by
        stage; returns hidden states (n, n_embd). Each micro-batch's hidden
        state crosses to the next device once per stage boundary; with several
        micro-batches the stages work on different ones at the same time.

        wanted: None (every token's state), or strictly increasing row indices
        of the tokens whose states are needed (those that get logits): the
        last layer's feed-forward then runs for them alone, as llama.cpp's
        does, and the result is (len(wanted), n_embd). Every token's keys and
        values are cached either way."""
        hidden = self.embed(ids)
        rows = None if wanted is None else self._check_wanted(wanted, len(ids))
        parts = split_batch(len(ids), self.micro_batches) if self._pipeline else [slice(0, len(ids))]
        self._boundaries.count += (len(self._stages) - 1) * len(parts)
        self._boundaries.bytes += (len(self._stages) - 1) * hidden.nbytes
        if len(parts) > 1:
            part_rows = [None if rows is None else rows[(rows >= p.start) & (rows < p.stop)] - p.start for p in parts]
            return np.concatenate(self._pipeline.run([hidden[p] for p in parts], [seq[p] for p in parts],
                                                     [pos[p] for p in parts], part_rows))
        for k, stage in enumerate(self._stages):
            hidden = stage.forward(hidden, seq, pos, rows if k == len(self._stages) - 1 else None)
        return hidden

    @staticmethod
    def _check_wanted(wanted, n: int) -> np.ndarray:
        rows = np.asarray(wanted).reshape(-1)
        if rows.size and (rows.dtype == np.bool_ or not np.issubdtype(rows.dtype, np.integer)):
            raise TypeError(f"wanted must be int row indices, got {rows.dtype} values")
        if rows.size and (rows[0] < 0 or rows[-1] >= n or np.any(np.diff(rows) <= 0)):
            raise ValueError(f"wanted must be strictly increasing row indices of the batch of {n}, got {rows.tolist()}")
        return rows.astype(np.int32)

    def prefill(self, tokens, seq_id: int = 0, start: int = 0, *, all_logits: bool = False) -> np.ndarray:
        """Appends tokens to sequence ``seq_id`` from position ``start``, in chunks
        of n_batch. Returns logits of every token (all_logits) or of the last (1, n_vocab)."""
        ids = self.check_tokens(tokens)
        if ids.size == 0:
            raise ValueError("prefill needs at least one token")
        if start + ids.size > self.n_ctx:
            raise ValueError(f"{start + ids.size} tokens exceed the context of {self.n_ctx} (n_ctx)")
        out = []
        for first in range(0, ids.size, self.n_batch):
            chunk = ids[first:first + self.n_batch]
            pos = np.arange(start + first, start + first + chunk.size, dtype=np.int32)
            last = first + chunk.size == ids.size
            # Without all_logits only the prompt's last token needs a state: earlier chunks want none.
            wanted = None if all_logits else [chunk.size - 1] if last else []
            hidden = self.decode(chunk, np.full(chunk.size, seq_id, np.int32), pos, wanted)
            if all_logits or last:
                out.append(self.head(hidden))
        return np.concatenate(out) if all_logits else out[-1]

    def remove_sequence(self, seq_id: int, p0: int = 0, p1: int | None = None) -> None:
        """Frees the KV cells of a sequence with positions in [p0, p1) (p1=None: to the end)."""
        for stage in self._stages:
            stage.remove_sequence(seq_id, p0, -1 if p1 is None else p1)

    def shift_sequence(self, seq_id: int, p0: int, p1: int | None, delta: int) -> None:
        """Moves a sequence's cells with positions in [p0, p1) by delta, re-rotating their keys."""
        for stage in self._stages:
            stage.shift_sequence(seq_id, p0, -1 if p1 is None else p1, delta)

    def shift_context(self, seq_id: int, n_past: int, n_keep: int = 0) -> int:
        """llama.cpp's context shift: keeps the first n_keep tokens, drops half of
        the rest (the oldest), slides the remainder down. Returns the new n_past."""
        n_discard = (n_past - n_keep) // 2
        if n_discard <= 0:
            raise ValueError(f"cannot shift a context of {n_past} tokens keeping {n_keep}")
        self.remove_sequence(seq_id, n_keep, n_keep + n_discard)
        self.shift_sequence(seq_id, n_keep + n_discard, n_past, -n_discard)
        return n_past - n_discard

    def eval_logits(self, tokens) -> np.ndarray:
        """Logits (len(tokens), n_vocab) at every position of a fresh sequence."""
        seq_id = 0
        if len(tokens) == 0:
            return np.empty((0, self.n_vocab), np.float32)
        self.remove_sequence(seq_id)
        try:
            return self.prefill(tokens, seq_id, all_logits=True)
        finally:
            self.remove_sequence(seq_id)

    @cached_property
    def tokenizer(self) -> Tokenizer:
        return Tokenizer.from_gguf(self.file)

    @cached_property
    def chat_template(self) -> ChatTemplate:
        return ChatTemplate.from_metadata(self.file.metadata, self.file.metadata.get("tokenizer.ggml.tokens"))

    @property
    def name(self) -> str:
        return str(self.file.metadata.get("general.name") or os.path.basename(self.file.path))

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of text, as llama.cpp tokenizes it."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        return self.tokenizer.encode(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int]) -> str:
        """Text of token ids."""
        return self.tokenizer.decode([int(i) for i in self.check_tokens(list(ids))])

    def sampling_params(self, sampling: dict, ignore_eos: bool = False) -> SamplingParams:
        """SamplingParams of keyword arguments, checked against this model's
        vocabulary; the model's seed is the default. ignore_eos (llama.cpp's)
        bans the end-of-generation tokens through logit_bias."""
        kwargs = {"seed": self.seed, **sampling}
        if ignore_eos:
            kwargs["logit_bias"] = {**(kwargs.get("logit_bias") or {}), **{t: -np.inf for t in self.tokenizer.eog_ids}}
        params = SamplingParams(**kwargs)
        check_logit_bias_ids(params, self.n_vocab)
        return params

    def _run(self, prompt_ids: list[int], max_tokens: int, stop, sampling: dict, gen: Generation,
             context_shift: bool = False, ignore_eos: bool = False) -> Iterator[str]:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
            raise ValueError(f"max_tokens must be an int >= 0, got {max_tokens!r}")
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if not all(isinstance(s, str) for s in stops):
            raise TypeError("stop must be a string or a list of strings")
        if len(prompt_ids) > self.n_ctx:
            raise ValueError(f"the prompt has {len(prompt_ids)} tokens; the context holds {self.n_ctx} (n_ctx)")
        return generate(self, prompt_ids, self.sampling_params(sampling, ignore_eos), max_tokens, stops, result=gen,
                        context_shift=bool(context_shift))

    def generate(self, prompt: str, *, max_tokens: int = 128, stop: str | Sequence[str] | None = None,
                 stream: bool = False, context_shift: bool = False, ignore_eos: bool = False,
                 **sampling) -> str | Iterator[str]:
        """Continues prompt. Sampling keywords: see hetinfer.sampling.SamplingParams
        (temperature, top_k, top_p, min_p, repeat_penalty, presence_penalty,
        frequency_penalty, seed, ...). stream=True returns an iterator of text pieces.
        context_shift=True drops the older half of a full context instead of stopping;
        ignore_eos=True never samples an end-of-generation token."""
        pieces = self._run(self.tokenize(prompt, parse_special=True), max_tokens, stop, sampling, Generation(),
                           context_shift, ignore_eos)
        return pieces if stream else "".join(pieces)

    def chat_prompt_ids(self, messages: list[dict], **template_vars) -> list[int]:
        """Token ids of messages rendered by the chat template, ready for a reply.
        template_vars (e.g. enable_thinking=False) become template variables."""
        prompt = self.chat_template.render(messages, add_generation_prompt=True, **template_vars)
        bos = self.chat_template.bos_token
        if bos and prompt.startswith(bos) and self.tokenizer.add_bos:
            prompt = prompt[len(bos):]  # the tokenizer adds BOS itself: avoid a double BOS
        return self.tokenize(prompt, add_special=True, parse_special=True)

    def chat(self, messages: list[dict], *, max_tokens: int = 512, stop: str | Sequence[str] | None = None,
             stream: bool = False, logprobs: bool = False, top_logprobs: int = 0, context_shift: bool = False,
             ignore_eos: bool = False, **sampling):
        """An OpenAI-shaped chat completion dict, or an iterator of chunk dicts with stream=True."""
        ids = self.chat_prompt_ids(messages)
        if logprobs:
            sampling["logprobs"] = top_logprobs
        gen = Generation()
        pieces = self._run(ids, max_tokens, stop, sampling, gen, context_shift, ignore_eos)
        if stream:
            return chat_format.chunks(self.name, pieces, gen)
        text = "".join(pieces)
        return chat_format.completion(self.name, text, gen, self.tokenizer, logprobs)

    def close(self) -> None:
        """Frees the KV cache and device memory and drops the file mapping."""
        if self._pipeline:
            self._pipeline.close()
        self._stages, self._embedding, self._head, self._pipeline = [], None, None, None
        self.file.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
