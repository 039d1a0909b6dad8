"""The tokenizer.* metadata of a GGUF file, read and defaulted as llama.cpp's llama_vocab::load does.

Everything that decides how text is split lives here as plain data: the
token texts, their attributes, SentencePiece scores or BPE merges, the special
token ids, the end-of-generation set and the add_bos/add_eos/space flags.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


class Attr:
    """llama_token_attr bits: what a token is, derived from tokenizer.ggml.token_type.

    Plain ints, not an IntFlag: they are tested once per token of 262k-token vocabularies.
    """

    UNDEFINED = 0
    UNKNOWN = 1 << 0
    UNUSED = 1 << 1
    NORMAL = 1 << 2
    CONTROL = 1 << 3
    USER_DEFINED = 1 << 4
    BYTE = 1 << 5


# tokenizer.ggml.token_type values (gguf.TokenType) -> attributes; anything else is UNDEFINED.
_TYPE_ATTR = {1: Attr.NORMAL, 2: Attr.UNKNOWN, 3: Attr.CONTROL, 4: Attr.USER_DEFINED,
              5: Attr.UNUSED, 6: Attr.BYTE}

# Tokens that print as their text and are hidden when decoding with skip_special.
SPECIAL = Attr.CONTROL | Attr.UNKNOWN

MODELS = {"llama": "spm", "gpt2": "bpe"}

# tokenizer.ggml.pre -> (pre-tokenizer, flags llama.cpp sets for it); a missing pre reads as "default".
_BPE_PRES: dict[str, tuple[str, dict[str, bool]]] = {
    "default": ("default", {}),
    "gpt-2": ("gpt2", {}),
    "llama3": ("llama3", {"ignore_merges": True, "add_bos": True}),
    "llama-v3": ("llama3", {"ignore_merges": True, "add_bos": True}),
    "llama-bpe": ("llama3", {"ignore_merges": True, "add_bos": True}),
    "qwen2": ("qwen2", {"clean_spaces": False}),
    "deepseek-r1-qwen": ("qwen2", {"clean_spaces": False}),
}

# Role -> texts llama.cpp recognises when the file names no id for it, in the order we prefer
# (llama.cpp takes whichever its hash map yields first). Found tokens become CONTROL.
_DETECTED_ROLES: dict[str, tuple[str, ...]] = {
    "eot": ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
            "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
            "<end_of_utterance>"),
    "eom": ("<|eom_id|>",),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}

# Texts that end generation wherever they appear in a vocabulary (llama.cpp's list).
_EOG_TEXTS = frozenset((
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>",
    "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
    "<|end_of_text|>", "<end_of_utterance>", "<eos>", "<turn|>", "<|tool_response>",
    "<｜end▁of▁sentence｜>", "[e~[",
))

_ID_KEYS = {"bos": "bos_token_id", "eos": "eos_token_id", "eot": "eot_token_id",
            "eom": "eom_token_id", "unk": "unknown_token_id", "pad": "padding_token_id",
            "fim_pad": "fim_pad_token_id", "fim_rep": "fim_rep_token_id",
            "fim_sep": "fim_sep_token_id"}

_FLAG_KEYS = {"add_bos": "tokenizer.ggml.add_bos_token", "add_eos": "tokenizer.ggml.add_eos_token",
              "add_space_prefix": "tokenizer.ggml.add_space_prefix"}

# llama.cpp's default ids per model, used when the file has no key (dropped if out of range).
_DEFAULT_IDS = {"spm": {"bos": 1, "eos": 2, "unk": 0}, "bpe": {"bos": 11, "eos": 11}}


@dataclass
class Vocab:
    """One model's vocabulary and tokenizer settings."""

    kind: str                    # "spm" or "bpe"
    pre: str | None              # BPE pre-tokenizer: "llama3", "qwen2", "gpt2", "default"
    tokens: list[str]            # id -> text (surrogate-escaped where not UTF-8)
    attrs: list[int]
    scores: list[float]
    merges: list[str]            # BPE only: "left right", rank = position
    token_to_id: dict[str, int]  # text -> id; the last of duplicate texts wins, as in llama.cpp
    ids: dict[str, int | None]   # role ("bos", "eos", "eot", ...) -> id
    eog_ids: frozenset[int]
    add_bos: bool
    add_eos: bool
    add_space_prefix: bool
    clean_spaces: bool
    ignore_merges: bool

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def check_id(self, token_id: int) -> int:
        """``token_id`` as an int, or ValueError naming it when it is outside the vocabulary."""
        if not 0 <= token_id < len(self.tokens):
            raise ValueError(f"token id {token_id} is outside the vocabulary (0..{len(self.tokens) - 1})")
        return int(token_id)


def byte_text(b: int) -> str:
    """A one-byte string as token texts hold it (bytes >= 0x80 are surrogate-escaped)."""
    return bytes([b]).decode("utf-8", errors="surrogateescape")


def load_vocab(metadata: Mapping[str, Any]) -> Vocab:
    """Read the tokenizer.* keys of ``metadata`` (a GGUF metadata dict)."""
    model = metadata.get("tokenizer.ggml.model")
    if model not in MODELS:
        supported = ", ".join(f"{m!r}" for m in MODELS)
        raise ValueError(f"unsupported tokenizer.ggml.model {model!r}: hetinfer supports {supported}")
    kind = MODELS[model]
    pre, flags = _pre_and_flags(kind, metadata.get("tokenizer.ggml.pre"))
    tokens = _tokens(metadata)
    n = len(tokens)
    attrs = [_TYPE_ATTR.get(t, Attr.UNDEFINED) for t in _per_token(metadata, "token_type", n, 1).tolist()]
    scores = _per_token(metadata, "scores", n, 0.0).astype(np.float32).tolist()
    if kind == "bpe" and "tokenizer.ggml.merges" not in metadata:
        raise ValueError("a gpt2 (BPE) tokenizer needs tokenizer.ggml.merges, which the file lacks")
    merges = list(metadata["tokenizer.ggml.merges"]) if kind == "bpe" else []
    token_to_id = dict(zip(tokens, range(n)))
    ids = _special_ids(kind, metadata, n)
    _detect_roles(ids, token_to_id, attrs)
    for flag, key in _FLAG_KEYS.items():
        if key in metadata:
            flags[flag] = bool(metadata[key])
    for role in ("bos", "eos"):
        if flags[f"add_{role}"] and ids[role] is None:
            raise ValueError(f"tokenizer.ggml.add_{role}_token is set but the vocabulary has no {role} token")
    return Vocab(kind=kind, pre=pre, tokens=tokens, attrs=attrs, scores=scores, merges=merges,
                 token_to_id=token_to_id, ids=ids, eog_ids=_eog_ids(ids, token_to_id, attrs), **flags)


def _pre_and_flags(kind: str, pre: str | None) -> tuple[str | None, dict[str, bool]]:
    """The pre-tokenizer and llama.cpp's defaults for it (before the file's add_* keys)."""
    if kind == "spm":
        return None, {"add_bos": True, "add_eos": False, "add_space_prefix": True,
                      "clean_spaces": False, "ignore_merges": False}
    name = "default" if pre is None else pre
    if name not in _BPE_PRES:
        supported = ", ".join(f"{p!r}" for p in _BPE_PRES)
        raise ValueError(f"unsupported tokenizer.ggml.pre {name!r} for a gpt2 tokenizer: "
                         f"hetinfer supports {supported}")
    splitter, overrides = _BPE_PRES[name]
    flags = {"add_bos": False, "add_eos": False, "add_space_prefix": False,
             "clean_spaces": True, "ignore_merges": False}
    flags.update(overrides)
    return splitter, flags


def _tokens(metadata: Mapping[str, Any]) -> list[str]:
    tokens = metadata.get("tokenizer.ggml.tokens")
    if not isinstance(tokens, list) or not tokens:
        raise ValueError("the file has no tokenizer.ggml.tokens list")
    # llama.cpp renames empty texts so that every text maps back to one id
    return [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]


def _per_token(metadata: Mapping[str, Any], name: str, n: int, default: float) -> np.ndarray:
    values = metadata.get(f"tokenizer.ggml.{name}")
    if values is None:
        return np.full(n, default)
    values = np.asarray(values)
    if len(values) < n:
        raise ValueError(f"tokenizer.ggml.{name} has {len(values)} entries for {n} tokens")
    return values[:n]


def _special_ids(kind: str, metadata: Mapping[str, Any], n: int) -> dict[str, int | None]:
    """Role -> id: the file's key when in range, else llama.cpp's default when in range."""
    ids: dict[str, int | None] = {}
    for role, key in _ID_KEYS.items():
        default = _DEFAULT_IDS[kind].get(role)
        value = metadata.get(f"tokenizer.ggml.{key}", default)
        if value is None or not 0 <= value < n:
            value = default if default is not None and default < n else None
        ids[role] = None if value is None else int(value)
    return ids


def _detect_roles(ids: dict[str, int | None], token_to_id: dict[str, int], attrs: list[int]) -> None:
    """Fill roles the file leaves unset from well-known token texts, as llama.cpp does."""
    for role, texts in _DETECTED_ROLES.items():
        if ids[role] is not None:
            continue
        found = next((token_to_id[t] for t in texts if t in token_to_id), None)
        if found is not None:
            ids[role] = found
            attrs[found] |= Attr.CONTROL


def _eog_ids(ids: dict[str, int | None], token_to_id: dict[str, int], attrs: list[int]) -> frozenset[int]:
    """End-of-generation ids: FIM pad/repo/sep, every end-like text, and eos/eot/eom."""
    eog = {token_to_id[t] for t in _EOG_TEXTS if t in token_to_id}
    for tid in eog:
        attrs[tid] |= Attr.CONTROL
    eog.update(ids[r] for r in ("fim_pad", "fim_rep", "fim_sep", "eos", "eot", "eom") if ids[r] is not None)
    return frozenset(eog)
