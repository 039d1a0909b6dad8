"""The generation loop: prefill a prompt, then sample and decode one token at a
time, streaming text that is valid UTF-8 and never shows part of a stop string."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..sampling import SampledToken, Sampler, SamplingParams


@dataclass
class Generation:
    """What a finished (or running) generation produced."""

    prompt_tokens: int = 0
    tokens: list[int] = field(default_factory=list)
    logprobs: list[SampledToken] = field(default_factory=list)
    finish_reason: str | None = None  # "stop" (end of generation or a stop string) or "length"


class TextStream:
    """Turns token pieces (bytes) into text pieces: whole UTF-8 characters only,
    and text held back while it could still become a stop string."""

    def __init__(self, stop: Sequence[str]):
        self.stop = [s for s in stop if s]
        self._pending = b""   # bytes of an unfinished UTF-8 character
        self._held = ""       # text that may be the start of a stop string
        self.stopped = False

    def push(self, piece: bytes) -> str:
        """Text now safe to show; sets ``stopped`` when a stop string appeared (it is cut off)."""
        data = self._pending + piece
        cut = _complete_utf8_prefix(data)
        self._pending = data[cut:]
        text = self._held + data[:cut].decode("utf-8", errors="replace")
        for s in self.stop:
            at = text.find(s)
            if at >= 0:
                self.stopped = True
                self._held = ""
                return text[:at]
        keep = max((_suffix_prefix_overlap(text, s) for s in self.stop), default=0)
        self._held = text[len(text) - keep:] if keep else ""
        return text[:len(text) - keep]

    def flush(self) -> str:
        """The rest, at the end of generation."""
        text = self._held + self._pending.decode("utf-8", errors="replace")
        self._held, self._pending = "", b""
        return text


def _complete_utf8_prefix(data: bytes) -> int:
    """Length of the longest prefix of data that does not end inside a UTF-8 character."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 != 0x80:  # a lead byte (or ASCII): does its character end within data?
            need = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4 if b >> 3 == 0b11110 else 1
            return len(data) if back >= need else len(data) - back
    return len(data)


def _suffix_prefix_overlap(text: str, stop: str) -> int:
    """Longest k < len(stop) such that text ends with stop[:k]."""
    for k in range(min(len(stop) - 1, len(text)), 0, -1):
        if text.endswith(stop[:k]):
            return k
    return 0


class SequenceDecoder:
    """One sequence's generation after its prompt is in the KV cache: samples
    from logits, streams text, and says which token to decode next. Model.generate
    drives one; the server's engine drives one per slot, batched."""

    def __init__(self, model, prompt_ids: Sequence[int], params: SamplingParams, max_tokens: int,
                 stop: Sequence[str] = (), seq_id: int = 0, result: Generation | None = None,
                 context_shift: bool = False):
        self.model, self.seq_id, self.max_tokens, self.context_shift = model, seq_id, max_tokens, context_shift
        self.result = result if result is not None else Generation()
        self.result.prompt_tokens = len(prompt_ids)
        self.sampler = Sampler(params, model.n_vocab)
        self.stream = TextStream(stop)
        self.history = list(prompt_ids)  # every token so far, for the penalties
        self.n_past = len(prompt_ids)    # tokens in the KV cache
        self.done = False
        if max_tokens == 0:
            self._finish("length")

    def _finish(self, reason: str) -> str:
        self.done, self.result.finish_reason = True, reason
        return "" if reason == "stop" and self.stream.stopped else self.stream.flush()

    def accept(self, logits) -> str:
        """Samples the next token from logits (n_vocab,); returns the text it makes visible."""
        tok = self.model.tokenizer
        chosen = self.sampler.sample(logits, self.history)
        if tok.is_eog(chosen.id):
            return self._finish("stop")
        self.result.tokens.append(chosen.id)
        self.result.logprobs.append(chosen)
        self.history.append(chosen.id)
        piece = self.stream.push(tok.token_to_piece(chosen.id))
        if self.stream.stopped:
            return piece + self._finish("stop")
        if len(self.result.tokens) >= self.max_tokens or (self.n_past >= self.model.n_ctx and not self.context_shift):
            return piece + self._finish("length")
        return piece

    def next_input(self) -> tuple[int, int]:
        """(token, position) to decode next: the token just sampled. When the
        context is full it first drops the older half after BOS (context shift)."""
        if self.n_past >= self.model.n_ctx:
            self.n_past = self.model.shift_context(self.seq_id, self.n_past, n_keep=int(self.model.tokenizer.add_bos))
        self.n_past += 1
        return self.history[-1], self.n_past - 1


def generate(model, prompt_ids: list[int], params: SamplingParams, max_tokens: int,
             stop: Sequence[str] = (), seq_id: int = 0, result: Generation | None = None,
             context_shift: bool = False) -> Iterator[str]:
    """Yields text pieces; fills ``result`` (tokens, logprobs, finish_reason) as it goes.
    With context_shift, a full context drops the older half of the tokens after
    BOS (llama.cpp's context shift) instead of ending the generation."""
    decoder = SequenceDecoder(model, prompt_ids, params, max_tokens, stop, seq_id, result, context_shift)
    model.remove_sequence(seq_id)
    try:
        logits = model.prefill(prompt_ids, seq_id)[0]
        while not decoder.done:
            piece = decoder.accept(logits)
            if piece:
                yield piece
            if not decoder.done:
                token, pos = decoder.next_input()
                logits = model.prefill([token], seq_id, start=pos)[0]
    finally:
        model.remove_sequence(seq_id)
