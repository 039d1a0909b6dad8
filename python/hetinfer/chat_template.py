"""Chat templates: a conversation in, the prompt text its model was trained on out.

A GGUF file carries its template as Jinja source (``tokenizer.chat_template``,
as in Hugging Face's tokenizer_config.json). It comes with the model file, so it
is untrusted code: it runs in jinja2's immutable sandbox set up as transformers
does (trim_blocks, lstrip_blocks, loopcontrols, ``raise_exception``,
``strftime_now``, a ``tojson`` that keeps non-ASCII), with guards of our own.
Touching an internal attribute (``x.__class__``) raises at once, where jinja2
would print nothing. For-loops share ``MAX_LOOP_ITERATIONS`` per rendering. The
output, and every string or list built by ``*``, calls, filters or ``namespace``
attributes, is capped at ``MAX_OUTPUT_CHARS`` plus four times the input's size,
as are integer arguments (widths, counts); ``**`` stops at 64 Ki-bit integers and
format strings may not hold 7-digit numbers (``{:>9999999999}``). Whatever a
template raises, or a guard stops, becomes ``ChatTemplateError``.
"""

from __future__ import annotations

import contextvars
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.filters import do_format
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from jinja2.utils import Namespace

MAX_OUTPUT_CHARS = 1_000_000
MAX_LOOP_ITERATIONS = 1_000_000
_MAX_POWER_BITS = 1 << 16
_LONG_NUMBER = re.compile(r"\d{7}")
_LOOP_GUARD = "_hetinfer_loop_guard"  # filter wrapped around every for-loop's iterable


class ChatTemplateError(ValueError):
    """A chat template is malformed or hostile, ran over a limit, or rejected the conversation."""


# Gemma (1, 2, 3): the assistant is "model", a system prompt opens the first user turn,
# turns must alternate, contents are trimmed. BOS is written by the template.
GEMMA = r"""{{ bos_token }}
{%- if messages[0].role == 'system' %}
    {%- set first_user_prefix = messages[0].content ~ '\n\n' %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set first_user_prefix = '' %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- for message in loop_messages %}
    {%- if (message.role == 'user') != (loop.index0 is even) %}
        {{- raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {{- '<start_of_turn>' ~ ('model' if message.role == 'assistant' else message.role) ~ '\n' }}
    {{- (first_user_prefix if loop.first else '') ~ message.content | trim ~ '<end_of_turn>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"""

# Llama 3 instruct: a header per turn, <|eot_id|> after each; Llama 3.1's date and tool
# preamble is left out (files of 3.1 and later carry their own template).
LLAMA3 = r"""{{ bos_token }}
{%- for message in messages %}
    {{- '<|start_header_id|>' ~ message.role ~ '<|end_header_id|>\n\n' ~ message.content | trim ~ '<|eot_id|>' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"""

# ChatML (Qwen, many fine-tunes): contents verbatim, no BOS.
CHATML = r"""{%- for message in messages %}
    {{- '<|im_start|>' ~ message.role ~ '\n' ~ message.content ~ '<|im_end|>\n' }}
{%- endfor %}
{%- if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"""

BUILTIN_TEMPLATES = {"gemma": GEMMA, "llama3": LLAMA3, "chatml": CHATML}

# Tokens that mark a vocabulary as trained on a built-in format, checked in this order.
_FORMAT_MARKERS = (("<start_of_turn>", "gemma"), ("<|im_start|>", "chatml"), ("<|start_header_id|>", "llama3"))
_GEMMA_ARCHITECTURES = ("gemma", "gemma2", "gemma3")


class ChatTemplate:
    """A compiled chat template; ``render`` turns OpenAI-style messages into a prompt.

    ``bos_token``/``eos_token`` are the texts templates see under those names;
    ``name`` labels error messages (the built-ins are named after their key).
    """

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "", name: str | None = None):
        for arg, value in (("source", source), ("bos_token", bos_token), ("eos_token", eos_token)):
            if not isinstance(value, str):
                raise TypeError(f"ChatTemplate {arg} must be a str, got {type(value).__name__}")
        self.source, self.bos_token, self.eos_token, self.name = source, bos_token, eos_token, name
        self._label = f"chat template {name!r}" if name else "chat template"
        self._template = _compile(source, self._label)

    @classmethod
    def builtin(cls, name: str, *, bos_token: str = "", eos_token: str = "") -> ChatTemplate:
        """One of ``BUILTIN_TEMPLATES`` ("gemma", "llama3", "chatml")."""
        if name not in BUILTIN_TEMPLATES:
            raise ValueError(f"no built-in chat template {name!r}; there are {sorted(BUILTIN_TEMPLATES)}")
        return cls(BUILTIN_TEMPLATES[name], bos_token=bos_token, eos_token=eos_token, name=name)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], tokens: Sequence[str] | None = None) -> ChatTemplate:
        """The template of a GGUF file, given its metadata (``open_gguf(path).metadata``).

        BOS/EOS texts come from ``tokenizer.ggml.bos_token_id``/``eos_token_id``
        looked up in ``tokens`` (default: ``tokenizer.ggml.tokens``). A file
        without ``tokenizer.chat_template`` gets a built-in: gemma for gemma
        architectures, else the first whose marker token the vocabulary holds
        (``<start_of_turn>`` gemma, ``<|im_start|>`` chatml, ``<|start_header_id|>``
        llama3). With none of those, ChatTemplateError: unlike llama.cpp we do
        not fall back to ChatML, whose markers such a vocabulary would split into
        plain text, giving a prompt the model never saw; pass a template instead.
        """
        if tokens is None:
            tokens = metadata.get("tokenizer.ggml.tokens", [])
        bos = _token_text(metadata, tokens, "tokenizer.ggml.bos_token_id")
        eos = _token_text(metadata, tokens, "tokenizer.ggml.eos_token_id")
        source = metadata.get("tokenizer.chat_template")
        if source is not None:
            return cls(source, bos_token=bos, eos_token=eos, name="tokenizer.chat_template")
        return cls.builtin(_pick_builtin(metadata, tokens), bos_token=bos, eos_token=eos)

    def render(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
               tools: list | None = None, **extra: Any) -> str:
        """The prompt for ``messages``, ending with the assistant's turn opened if ``add_generation_prompt``.

        Each message is a dict with "role" (str) and "content": a str, a list of
        ``{"type": "text", "text": ...}`` parts (joined with newlines, as llama.cpp
        does, since most templates expect strings), or None for an assistant
        message with "tool_calls" (becomes ""). Other keys pass through. ``tools``
        (OpenAI tool specs) and ``extra`` keywords (e.g. ``enable_thinking``)
        become template variables. Bad messages raise TypeError/ValueError naming
        the message; the template's own failures raise ChatTemplateError.
        """
        if not isinstance(tools, (list, type(None))):
            raise TypeError(f"tools must be a list or None, got {type(tools).__name__}")
        context = {"bos_token": self.bos_token, "eos_token": self.eos_token, **extra,
                   "messages": _normalise_messages(messages), "tools": tools,
                   "add_generation_prompt": add_generation_prompt}
        # Templates write each message about once; four times the input leaves room for repeats.
        limits = _Limits(max_chars=MAX_OUTPUT_CHARS + 4 * len(repr(context)))
        return _render(self._template, context, limits, self._label)

    def __repr__(self) -> str:
        return f"ChatTemplate(name={self.name!r}, bos_token={self.bos_token!r}, eos_token={self.eos_token!r})"


def _token_text(metadata: Mapping[str, Any], tokens: Sequence[str], key: str) -> str:
    token_id = metadata.get(key)
    if token_id is None:
        return ""
    if not isinstance(token_id, int) or not 0 <= token_id < len(tokens):
        raise ChatTemplateError(f"{key} = {token_id!r} is not a token id (the vocabulary has {len(tokens)})")
    return tokens[token_id]


def _pick_builtin(metadata: Mapping[str, Any], tokens: Sequence[str]) -> str:
    architecture = metadata.get("general.architecture")
    if architecture in _GEMMA_ARCHITECTURES:
        return "gemma"
    vocabulary = set(tokens)
    for marker, name in _FORMAT_MARKERS:
        if marker in vocabulary:
            return name
    raise ChatTemplateError(
        f"the model (architecture {architecture!r}) has no tokenizer.chat_template and its vocabulary "
        f"has none of the tokens {[m for m, _ in _FORMAT_MARKERS]} that the built-in templates need; "
        "pass one: ChatTemplate(source) or ChatTemplate.builtin(name)")


def _normalise_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated copies of ``messages`` with text-part lists flattened, so callers' dicts stay untouched."""
    if not isinstance(messages, (list, tuple)):
        raise TypeError(f"messages must be a list of dicts, got {type(messages).__name__}")
    if not messages:
        raise ValueError("messages is empty")
    return [_normalise_message(i, m) for i, m in enumerate(messages)]


def _normalise_message(index: int, message: Mapping[str, Any]) -> dict[str, Any]:
    where = f"messages[{index}]"
    if not isinstance(message, Mapping):
        raise TypeError(f"{where} must be a dict, got {type(message).__name__}")
    for key in ("role", "content"):
        if key not in message:
            raise ValueError(f"{where} has no {key!r}")
    if not isinstance(message["role"], str):
        raise TypeError(f"{where}['role'] must be a str, got {type(message['role']).__name__}")
    return {**message, "content": _content_text(where, message)}


def _content_text(where: str, message: Mapping[str, Any]) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    if content is None and message["role"] == "assistant" and message.get("tool_calls"):
        return ""
    if not isinstance(content, list):
        raise TypeError(f"{where}['content'] must be a str or a list of text parts, got {type(content).__name__}")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, Mapping) or part.get("type") != "text" or not isinstance(part.get("text"), str):
            raise ValueError(f"{where}['content'][{j}] must be {{'type': 'text', 'text': str}} "
                             "(only text parts are supported)")
        texts.append(part["text"])
    return "\n".join(texts)


@dataclass
class _Limits:
    """What one rendering may still spend."""

    max_chars: int
    loops_left: int = MAX_LOOP_ITERATIONS


# Per rendering, so one environment serves concurrent renderings (server threads).
_LIMITS: contextvars.ContextVar[_Limits] = contextvars.ContextVar("hetinfer_chat_template_limits")


def _check_size(value: Any) -> Any:
    if isinstance(value, (str, list, tuple, dict)) and len(value) > _LIMITS.get().max_chars:
        raise ChatTemplateError(f"the template built a {type(value).__name__} of {len(value)} items, over the limit")
    return value


def _check_argument(value: Any) -> None:
    if isinstance(value, int) and abs(value) > _LIMITS.get().max_chars:
        raise ChatTemplateError(f"the template passed {value}, a number over the size limit")
    _check_size(value)


def _check_format(fmt: str) -> None:
    if _LONG_NUMBER.search(fmt):
        raise ChatTemplateError("format strings may not hold numbers of seven or more digits")


def _check_binop(op: str, left: Any, right: Any) -> None:
    if op == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                if len(seq) * times > _LIMITS.get().max_chars:
                    raise ChatTemplateError(f"repeating a {type(seq).__name__} {times} times goes over the limit")
    elif op == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        if abs(left) > 1 and abs(left).bit_length() * right > _MAX_POWER_BITS:
            raise ChatTemplateError(f"{left} ** {right} is too large")
    elif op == "%" and isinstance(left, str):
        _check_format(left)


def _loop_guard(iterable: Any) -> Any:
    limits = _LIMITS.get()
    for item in iterable:
        limits.loops_left -= 1
        if limits.loops_left < 0:
            raise ChatTemplateError(f"the template's loops ran over {MAX_LOOP_ITERATIONS} iterations")
        yield item


def _guard_filter(f):
    """``f`` with its parameters and result size-checked (``wraps`` keeps jinja's pass_context marks)."""
    @functools.wraps(f)
    def guarded(*args, **kwargs):
        for value in (*args[1:], *kwargs.values()):
            _check_argument(value)
        return _check_size(f(*args, **kwargs))
    return guarded


class _GuardedNamespace(Namespace):
    """``namespace()``: its attributes are what survives a loop iteration, so they are size-checked."""

    def __setitem__(self, name: str, value: Any) -> None:
        super().__setitem__(name, _check_size(value))


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%"})

    def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
        raise SecurityError(f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe")

    def call_binop(self, context, op: str, left: Any, right: Any) -> Any:
        _check_binop(op, left, right)
        return super().call_binop(context, op, left, right)

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 - jinja2's signature
        for value in (*args, *kwargs.values()):
            _check_argument(value)
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Any:
        wrapped = super().wrap_str_format(value)  # not None for a str's format/format_map method
        if wrapped is not None:
            _check_format(value.__self__)
        return wrapped


def _tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False) -> str:
    """transformers' tojson: plain json.dumps, no HTML escaping, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _format_filter(value: Any, *args: Any, **kwargs: Any) -> str:
    _check_format(str(value))
    return do_format(value, *args, **kwargs)


def _make_environment() -> _Environment:
    env = _Environment(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    del env.globals["lipsum"]  # makes up to megabytes of text; no chat template uses it
    env.globals.update(namespace=_GuardedNamespace, raise_exception=_raise_exception, strftime_now=_strftime_now)
    env.filters.update(tojson=_tojson, format=_format_filter)
    env.filters = {name: _guard_filter(f) for name, f in env.filters.items()}
    env.filters[_LOOP_GUARD] = _loop_guard
    return env


_ENV = _make_environment()


def _compile(source: str, label: str) -> jinja2.Template:
    try:
        tree = _ENV.parse(source)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _LOOP_GUARD, [], [], None, None, lineno=loop.lineno)
        return _ENV.from_string(tree)
    except jinja2.TemplateSyntaxError as e:
        raise ChatTemplateError(f"{label}: syntax error on line {e.lineno}: {e.message}") from e
    except RecursionError as e:
        raise ChatTemplateError(f"{label}: nested too deeply to compile") from e


def _render(template: jinja2.Template, context: dict[str, Any], limits: _Limits, label: str) -> str:
    token = _LIMITS.set(limits)
    try:
        chunks, n_chars = [], 0
        # Streamed, so an endless template stops at the cap instead of filling memory.
        for chunk in template.generate(context):
            n_chars += len(chunk)
            if n_chars > limits.max_chars:
                raise ChatTemplateError(f"the output passed {limits.max_chars} characters")
            chunks.append(chunk)
        return "".join(chunks)
    except Exception as e:  # the template is untrusted code: whatever it raises is its failure
        reason = str(e) if isinstance(e, ChatTemplateError) else f"{type(e).__name__}: {e}"
        raise ChatTemplateError(f"{label}: {reason}") from e
    finally:
        _LIMITS.reset(token)
