"""OpenAI-shaped chat completion results (whole or streamed chunks)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from .generate import Generation


def _logprob_entry(tokenizer, token_id: int, logprob: float) -> dict:
    piece = tokenizer.token_to_piece(token_id)
    return {"token": piece.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(piece)}


def logprobs_content(tokenizer, sampled: list) -> list[dict]:
    """OpenAI's choices[].logprobs.content for sampled tokens (SampledToken list)."""
    out = []
    for s in sampled:
        entry = _logprob_entry(tokenizer, s.id, s.logprob)
        entry["top_logprobs"] = [_logprob_entry(tokenizer, i, lp) for i, lp in s.top_logprobs]
        out.append(entry)
    return out


def usage(gen: Generation) -> dict:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": len(gen.tokens),
            "total_tokens": gen.prompt_tokens + len(gen.tokens)}


def completion(model_name: str, text: str, gen: Generation, tokenizer, want_logprobs: bool) -> dict:
    ident, created = new_id("chatcmpl")
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model_name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": {"content": logprobs_content(tokenizer, gen.logprobs)} if want_logprobs else None,
            "finish_reason": gen.finish_reason,
        }],
        "usage": usage(gen),
    }


def chat_chunk(ident: str, created: int, model_name: str, delta: dict, finish: str | None,
               logprobs: list[dict] | None = None) -> dict:
    """One chat.completion.chunk; logprobs: content entries of the tokens in this chunk."""
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": logprobs}
    return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model_name,
            "choices": [choice]}


def new_id(prefix: str) -> tuple[str, int]:
    """A completion id and its creation time."""
    return f"{prefix}-{uuid.uuid4().hex}", int(time.time())


def chunks(model_name: str, pieces: Iterator[str], gen: Generation) -> Iterator[dict]:
    """chat.completion.chunk dicts: the role, one per text piece, then the finish reason with usage."""
    ident, created = new_id("chatcmpl")
    yield chat_chunk(ident, created, model_name, {"role": "assistant", "content": ""}, None)
    for piece in pieces:
        yield chat_chunk(ident, created, model_name, {"content": piece}, None)
    last = chat_chunk(ident, created, model_name, {}, gen.finish_reason)
    last["usage"] = usage(gen)
    yield last
