"""OpenAI-shaped chat completion results (whole or streamed chunks)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

from .generate import Generation


def _logprob_entry(tokenizer, token_id: int, logprob: float) -> dict:
    piece = tokenizer.token_to_piece(token_id)
    return {"token": piece.decode("utf-8", errors="replace"), "logprob": logprob, "bytes": list(piece)}


def logprobs_content(tokenizer, gen: Generation) -> list[dict]:
    """OpenAI's choices[].logprobs.content for the generated tokens."""
    out = []
    for s in gen.logprobs:
        entry = _logprob_entry(tokenizer, s.id, s.logprob)
        entry["top_logprobs"] = [_logprob_entry(tokenizer, i, lp) for i, lp in s.top_logprobs]
        out.append(entry)
    return out


def usage(gen: Generation) -> dict:
    return {"prompt_tokens": gen.prompt_tokens, "completion_tokens": len(gen.tokens),
            "total_tokens": gen.prompt_tokens + len(gen.tokens)}


def completion(model_name: str, text: str, gen: Generation, tokenizer, want_logprobs: bool) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": {"content": logprobs_content(tokenizer, gen)} if want_logprobs else None,
            "finish_reason": gen.finish_reason,
        }],
        "usage": usage(gen),
    }


def chunks(model_name: str, pieces: Iterator[str], gen: Generation) -> Iterator[dict]:
    """chat.completion.chunk dicts: the role, one per text piece, then the finish reason with usage."""
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())

    def chunk(delta: dict, finish: str | None) -> dict:
        return {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model_name,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in pieces:
        yield chunk({"content": piece}, None)
    last = chunk({}, gen.finish_reason)
    last["usage"] = usage(gen)
    yield last
