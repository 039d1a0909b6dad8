"""Reading OpenAI-style request bodies: every field checked, every mistake a
400 that names the field, as OpenAI's own API answers."""

from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field

from ..sampling import MAX_LOGPROBS


class ApiError(Exception):
    """An error answered with an OpenAI-shaped body: {"error": {message, type, param, code}}."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad(param: str | None, message: str, code: str | None = None) -> ApiError:
    return ApiError(400, message, param=param, code=code)


def invalid(e: Exception) -> ApiError:
    """A 400 for a TypeError/ValueError of the library. Its messages start with
    what they name ("top_p must be ...", "messages[0]['content'][0] must be ..."),
    which becomes the param in OpenAI's dotted form (messages[0].content[0])."""
    words = str(e).split()
    param = words[0].replace("['", ".").replace("']", "") if words else None
    return bad(param, str(e))


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(None, f"the request body is not valid JSON: {e}") from None
    if not isinstance(body, dict):
        raise bad(None, f"the request body must be a JSON object, got {type(body).__name__}")
    return body


def _number(body: dict, name: str) -> float | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
        raise bad(name, f"{name} must be a finite number, got {json.dumps(v)}")
    return float(v)


def _int(body: dict, name: str) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise bad(name, f"{name} must be an integer, got {json.dumps(v)}")
    return v


def _bool(body: dict, name: str, default: bool = False) -> bool:
    v = body.get(name, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise bad(name, f"{name} must be true or false, got {json.dumps(v)}")
    return v


def _string(body: dict, name: str) -> str | None:
    v = body.get(name)
    if v is not None and not isinstance(v, str):
        raise bad(name, f"{name} must be a string, got {json.dumps(v)}")
    return v


# llama.cpp's sampling fields beside OpenAI's: the request name -> SamplingParams field
_NUMBERS = {"temperature": "temperature", "top_p": "top_p", "min_p": "min_p", "repeat_penalty": "repeat_penalty",
            "presence_penalty": "presence_penalty", "frequency_penalty": "frequency_penalty"}
_INTS = {"top_k": "top_k", "repeat_last_n": "repeat_last_n", "seed": "seed"}


@dataclass
class GenerationRequest:
    """What both completion endpoints share."""

    model: str | None
    stream: bool
    include_usage: bool
    max_tokens: int | None  # None: until the context is full
    stop: list[str]
    sampling: dict = field(default_factory=dict)  # keyword arguments of SamplingParams
    logprobs: int | None = None  # top-n alternatives to report; None reports no logprobs
    ignore_eos: bool = False

    def sampling_kwargs(self) -> dict:
        """Keyword arguments of SamplingParams (Model.sampling_params builds and checks them)."""
        return {**self.sampling, "logprobs": self.logprobs}


def _stop(body: dict) -> list[str]:
    v = body.get("stop")
    if v is None:
        return []
    stops = [v] if isinstance(v, str) else v
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad("stop", "stop must be a string or a list of strings")
    return [s for s in stops if s]


def _logit_bias(body: dict) -> dict[int, float] | None:
    v = body.get("logit_bias")
    if v is None:
        return None
    if not isinstance(v, dict):
        raise bad("logit_bias", "logit_bias must be an object mapping token ids to numbers")
    out = {}
    for k, b in v.items():
        try:
            tid = int(k)
        except ValueError:
            raise bad("logit_bias", f"logit_bias keys must be token ids, got {k!r}") from None
        if isinstance(b, bool) or not isinstance(b, numbers.Real) or not math.isfinite(b):
            raise bad("logit_bias", f"logit_bias[{k}] must be a finite number, got {json.dumps(b)}")
        out[tid] = float(b)
    return out


def _common(body: dict) -> GenerationRequest:
    if _int(body, "n") not in (None, 1):
        raise bad("n", "n must be 1: ask once per choice")
    stream = _bool(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise bad("stream_options", "stream_options must be an object")
    include_usage = _bool(options or {}, "include_usage")
    max_tokens = next((v for name in ("max_completion_tokens", "max_tokens", "n_predict")  # n_predict: llama.cpp
                       if (v := _int(body, name)) is not None), None)
    if max_tokens == -1:
        max_tokens = None  # llama.cpp's "no limit"
    elif max_tokens is not None and max_tokens < 0:
        raise bad("max_tokens", f"max_tokens must be >= 0 (or -1: no limit), got {max_tokens}")
    sampling = {dst: v for src, dst in _NUMBERS.items() if (v := _number(body, src)) is not None}
    sampling.update({dst: v for src, dst in _INTS.items() if (v := _int(body, src)) is not None})
    bias = _logit_bias(body)
    if bias:
        sampling["logit_bias"] = bias
    fmt = body.get("response_format")
    if fmt is not None and (not isinstance(fmt, dict) or fmt.get("type", "text") != "text"):
        raise bad("response_format", "only response_format {\"type\": \"text\"} is supported "
                                     "(no grammar-constrained output yet)")
    if body.get("tools"):
        raise bad("tools", "tool calling is not supported yet: send the request without tools")
    return GenerationRequest(model=_string(body, "model"), stream=stream, include_usage=include_usage,
                             max_tokens=max_tokens, stop=_stop(body), sampling=sampling,
                             ignore_eos=_bool(body, "ignore_eos"))


def chat_request(body: dict) -> tuple[GenerationRequest, list[dict]]:
    req = _common(body)
    if _bool(body, "logprobs"):
        top = _int(body, "top_logprobs") or 0
        if not 0 <= top <= MAX_LOGPROBS:
            raise bad("top_logprobs", f"top_logprobs must be in 0..{MAX_LOGPROBS}, got {top}")
        req.logprobs = top
    elif _int(body, "top_logprobs"):
        raise bad("top_logprobs", "top_logprobs needs logprobs: true")
    return req, _messages(body.get("messages"))


ROLES = {"system", "developer", "user", "assistant", "tool"}


def _messages(messages) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise bad("messages", "messages must be a non-empty list of {role, content} objects")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad(where, f"{where} must be an object")
        role = m.get("role")
        if role not in ROLES:
            raise bad(f"{where}.role", f"{where}.role must be one of {', '.join(sorted(ROLES))}, got {role!r}")
        # Content stays as sent (string or text parts): the chat template checks and joins it.
        content = m.get("content")
        out.append({**m, "role": "system" if role == "developer" else role,
                    "content": "" if content is None else content})
    return out


def completion_request(body: dict) -> tuple[GenerationRequest, str | list[int]]:
    req = _common(body)
    top = _int(body, "logprobs")
    if top is not None:
        if not 0 <= top <= MAX_LOGPROBS:
            raise bad("logprobs", f"logprobs must be in 0..{MAX_LOGPROBS}, got {top}")
        req.logprobs = top
    if _bool(body, "echo"):
        raise bad("echo", "echo is not supported")
    if body.get("suffix"):
        raise bad("suffix", "suffix (fill in the middle) is not supported")
    return req, _prompt(body.get("prompt"))


def _prompt(prompt) -> str | list[int]:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return prompt
    if isinstance(prompt, list) and len(prompt) > 1 and all(isinstance(p, (str, list)) for p in prompt):
        raise bad("prompt", "one prompt per request: send a request for each prompt")
    raise bad("prompt", "prompt must be a string or a non-empty list of token ids")


def tokenize_request(body: dict) -> tuple[str, bool, bool]:
    """(content, add_special, with_pieces) of POST /tokenize."""
    content = body.get("content")
    if not isinstance(content, str):
        raise bad("content", "content must be a string")
    return content, _bool(body, "add_special"), _bool(body, "with_pieces")


def detokenize_request(body: dict) -> list[int]:
    tokens = body.get("tokens")
    if not isinstance(tokens, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in tokens):
        raise bad("tokens", "tokens must be a list of token ids")
    return tokens
