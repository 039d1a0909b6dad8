"""Model: a GGUF model loaded for execution (CPU for now)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from functools import cached_property

import numpy as np

from .. import _core, quants
from ..chat_template import ChatTemplate
from ..sampling import SamplingParams, check_logit_bias_ids
from ..tokenizer import Tokenizer
from . import chat as chat_format
from .generate import Generation, generate
from ..gguf_file import GGUFFile, open_gguf
from .arch import ArchConfig, arch_config
from .weights import layer_specs, output_tensor, prefetch, require_tensor, weight_spec

CACHE_TYPES = {"f32": "F32", "f16": "F16", "q8_0": "Q8_0", "q4_0": "Q4_0"}


def _cache_type(name: str, arg: str) -> int:
    if not isinstance(name, str) or name.lower() not in CACHE_TYPES:
        raise ValueError(f"{arg} must be one of {', '.join(CACHE_TYPES)}, got {name!r}")
    return int(quants.qtype(CACHE_TYPES[name.lower()]))


def _positive_int(value, arg: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{arg} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise ValueError(f"{arg} must be positive, got {value}")
    return value


def _check_devices(devices: Sequence[str] | None) -> list[str]:
    if devices is None:
        return ["cpu"]
    if isinstance(devices, str) or not all(isinstance(d, str) for d in devices):
        raise TypeError("devices must be a list of device names such as ['cpu']")
    for d in devices:
        if d != "cpu":
            raise ValueError(f"device {d!r} is not available in this build: only 'cpu' is "
                             "(the CUDA and SYCL backends are not built yet)")
    return list(devices) or ["cpu"]


class Model:
    """A loaded model. Use ``hetinfer.load(path, ...)``.

    ``n_ctx`` is the context of each sequence; the KV cache holds
    ``n_ctx * n_parallel`` cells shared by all sequences.
    """

    def __init__(self, path: str | os.PathLike, *, devices: Sequence[str] | None = None, n_ctx: int = 4096,
                 n_batch: int = 512, n_parallel: int = 1, cache_type_k: str = "f16", cache_type_v: str = "f16",
                 n_threads: int | None = None, seed: int | None = None, progress: bool | None = None):
        self.devices = _check_devices(devices)
        self.seed = seed
        self.n_ctx = _positive_int(n_ctx, "n_ctx")  # per sequence
        self.n_parallel = _positive_int(n_parallel, "n_parallel")
        self.n_batch = _positive_int(n_batch, "n_batch")
        k_type, v_type = _cache_type(cache_type_k, "cache_type_k"), _cache_type(cache_type_v, "cache_type_v")
        if n_threads is not None:
            quants.set_num_threads(_positive_int(n_threads, "n_threads"))
        self.file: GGUFFile = open_gguf(path)
        embd = require_tensor(self.file, "token_embd.weight")
        self.config: ArchConfig = arch_config(self.file.metadata, n_vocab=embd.shape[0])
        self._embd = weight_spec(embd)
        self._out = weight_spec(output_tensor(self.file))
        self._out_norm = require_tensor(self.file, "output_norm.weight").dequantize()
        prefetch(self.file, progress)
        self._stage = _core.Stage(self.config.block_config(), layer_specs(self.file, self.config, 0, self.config.n_layer),
                                  self.n_cells, k_type, v_type)

    @property
    def n_vocab(self) -> int:
        return self.config.n_vocab

    @property
    def n_cells(self) -> int:
        """KV cache cells of all sequences together (n_ctx * n_parallel)."""
        return self.n_ctx * self.n_parallel

    @property
    def used_cells(self) -> int:
        return self._stage.used_cells

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
        t, data, rows, cols = self._embd
        x = _core.get_rows(t, data, rows, cols, ids)
        return x * np.float32(self.config.embed_scale) if self.config.embed_scale != 1.0 else x

    def head(self, hidden: np.ndarray) -> np.ndarray:
        """(n, n_vocab) logits of final hidden states."""
        h = _core.rms_norm(hidden, self._out_norm, self.config.rms_eps)
        t, data, rows, cols = self._out
        logits = _core.matmul(t, data, rows, cols, h)
        if self.config.final_softcap > 0:
            logits = _core.softcap(logits, self.config.final_softcap)
        return logits

    def decode(self, ids: np.ndarray, seq: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Runs a batch of tokens through every layer; returns hidden states (n, n_embd)."""
        return self._stage.forward(self.embed(ids), seq, pos)

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
            hidden = self.decode(chunk, np.full(chunk.size, seq_id, np.int32), pos)
            out.append(self.head(hidden if all_logits else hidden[-1:]))
        return np.concatenate(out) if all_logits else out[-1]

    def remove_sequence(self, seq_id: int, p0: int = 0, p1: int | None = None) -> None:
        """Frees the KV cells of a sequence with positions in [p0, p1) (p1=None: to the end)."""
        self._stage.remove_sequence(seq_id, p0, -1 if p1 is None else p1)

    def shift_sequence(self, seq_id: int, p0: int, p1: int | None, delta: int) -> None:
        """Moves a sequence's cells with positions in [p0, p1) by delta, re-rotating their keys."""
        self._stage.shift_sequence(seq_id, p0, -1 if p1 is None else p1, delta)

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
        """Frees the KV cache and drops the file mapping."""
        self._stage = None
        self.file.close()

    def __enter__(self) -> Model:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
