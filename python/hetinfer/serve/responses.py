"""OpenAI-shaped response bodies of the server beyond the chat ones in
hetinfer.model.chat: text completions (whole and chunks) and the model list."""

from __future__ import annotations

from ..model.chat import new_id, usage
from ..model.generate import Generation


def _piece(tokenizer, token_id: int) -> str:
    return tokenizer.token_to_piece(token_id).decode("utf-8", errors="replace")


def text_logprobs(tokenizer, sampled: list, text_offset: int) -> dict:
    """The legacy completions logprobs object for sampled tokens, offsets counted from text_offset."""
    tokens = [_piece(tokenizer, s.id) for s in sampled]
    offsets, at = [], text_offset
    for t in tokens:
        offsets.append(at)
        at += len(t)
    return {"tokens": tokens, "token_logprobs": [s.logprob for s in sampled],
            "top_logprobs": [{_piece(tokenizer, i): lp for i, lp in s.top_logprobs} for s in sampled],
            "text_offset": offsets}


def text_completion(model_name: str, text: str, gen: Generation, tokenizer, want_logprobs: bool) -> dict:
    ident, created = new_id("cmpl")
    return {"id": ident, "object": "text_completion", "created": created, "model": model_name,
            "choices": [{"index": 0, "text": text,
                         "logprobs": text_logprobs(tokenizer, gen.logprobs, 0) if want_logprobs else None,
                         "finish_reason": gen.finish_reason}],
            "usage": usage(gen)}


def text_chunk(ident: str, created: int, model_name: str, text: str, finish: str | None,
               logprobs: dict | None = None) -> dict:
    return {"id": ident, "object": "text_completion", "created": created, "model": model_name,
            "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish}]}


def usage_chunk(ident: str, created: int, model_name: str, obj: str, gen: Generation) -> dict:
    """The last chunk when stream_options.include_usage is set: no choices, the usage."""
    return {"id": ident, "object": obj, "created": created, "model": model_name, "choices": [],
            "usage": usage(gen)}


def model_entry(name: str, created: int, meta: dict) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "hetinfer", "meta": meta}
