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


def generate(model, prompt_ids: list[int], params: SamplingParams, max_tokens: int,
             stop: Sequence[str] = (), seq_id: int = 0, result: Generation | None = None,
             context_shift: bool = False) -> Iterator[str]:
    """Yields text pieces; fills ``result`` (tokens, logprobs, finish_reason) as it goes.
    With context_shift, a full context drops the older half of the tokens after
    BOS (llama.cpp's context shift) instead of ending the generation."""
    result = result if result is not None else Generation()
    result.prompt_tokens = len(prompt_ids)
    tok = model.tokenizer
    sampler = Sampler(params, model.n_vocab)
    stream = TextStream(stop)
    model.remove_sequence(seq_id)
    try:
        logits = model.prefill(prompt_ids, seq_id)[0]
        history = list(prompt_ids)  # every token so far, for the penalties
        n_past = len(history)       # tokens in the KV cache
        result.finish_reason = "length"
        while len(result.tokens) < max_tokens:
            chosen = sampler.sample(logits, history)
            if tok.is_eog(chosen.id):
                result.finish_reason = "stop"
                break
            result.tokens.append(chosen.id)
            result.logprobs.append(chosen)
            history.append(chosen.id)
            piece = stream.push(tok.token_to_piece(chosen.id))
            if piece:
                yield piece
            if stream.stopped:
                result.finish_reason = "stop"
                return
            if len(result.tokens) == max_tokens:
                break
            if n_past >= model.n_ctx:  # no cell left for the token just sampled
                if not context_shift:
                    break
                n_past = model.shift_context(seq_id, n_past, n_keep=int(tok.add_bos))
            logits = model.prefill([chosen.id], seq_id, start=n_past)[0]
            n_past += 1
        rest = stream.flush()
        if rest:
            yield rest
    finally:
        model.remove_sequence(seq_id)
