"""Deterministic vocabularies for test models, learned from a built-in corpus.

Two kinds, as llama.cpp reads them:

- SentencePiece style (``tokenizer.ggml.model = "llama"``; Llama 2, Gemma):
  specials, the 256 byte-fallback tokens ``<0x00>``..``<0xFF>``, learned pieces
  (spaces written as U+2581) scored by merge rank (-rank, so earlier merges win),
  then the corpus characters. Characters seen once or not printable (newline,
  the emoji) get no token, so text containing them exercises byte fallback.
- Byte-level BPE (``"gpt2"``; Qwen2/3, Llama 3): the 256 GPT-2 byte symbols,
  one token per learned merge, ``tokenizer.ggml.merges``, then the specials.

The size asked for is met exactly: the first merges are taken until the
vocabulary is full, and if the corpus runs out of merges first (around 1,300
tokens), the rest is padded with unused control tokens (``<unused0>``, ...),
as real vocabularies reserve them.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass

from gguf import GGUFWriter, TokenType

from . import chat_templates
from .bpe_train import learn_merges
from ..tokenizer.bpe import byte_to_unicode
from .corpus import CORPUS

SPM_SPACE = "\u2581"  # SentencePiece's visible space


@dataclass(frozen=True)
class Style:
    """What distinguishes one model family's tokenizer metadata."""

    model: str                  # tokenizer.ggml.model
    pre: str                    # tokenizer.ggml.pre
    specials: tuple[str, ...]   # control tokens in id order
    bos: str
    eos: str
    pad: str
    unk: str | None             # SentencePiece only
    add_bos: bool
    add_space_prefix: bool | None   # SentencePiece only
    filler: str                 # name pattern of padding tokens
    chat_template: str
    split: re.Pattern[str] | None = None  # BPE pre-tokenizer


def _pretokenizer(digits: str) -> re.Pattern[str]:
    r"""llama.cpp's qwen2 / llama-bpe pre-tokenizer regex; they differ in how many digits go together.

    Python `re` has no \p{L}/\p{N}: [^\W\d_] is a letter, \d a digit, and the
    "not letter or digit" classes add back the underscore that \w swallows.
    """
    return re.compile(r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|(?:[^\r\n\w]|_)?[^\W\d_]+|\d" + digits
                      + r"| ?(?:[^\s\w]|_)+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


STYLES: dict[str, Style] = {
    "llama-spm": Style(
        model="llama", pre="default", specials=("<unk>", "<s>", "</s>"),
        bos="<s>", eos="</s>", pad="<unk>", unk="<unk>", add_bos=True, add_space_prefix=True,
        filler="<unused{}>", chat_template=chat_templates.LLAMA2),
    "gemma-spm": Style(
        model="llama", pre="default",
        specials=("<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"),
        bos="<bos>", eos="<eos>", pad="<pad>", unk="<unk>", add_bos=True, add_space_prefix=False,
        filler="<unused{}>", chat_template=chat_templates.GEMMA),
    "qwen-bpe": Style(
        model="gpt2", pre="qwen2", specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        bos="<|endoftext|>", eos="<|im_end|>", pad="<|endoftext|>", unk=None, add_bos=False,
        add_space_prefix=None, filler="<|extra_{}|>", chat_template=chat_templates.CHATML,
        split=_pretokenizer("")),
    "llama3-bpe": Style(
        model="gpt2", pre="llama-bpe",
        specials=("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                  "<|end_header_id|>", "<|eot_id|>"),
        bos="<|begin_of_text|>", eos="<|eot_id|>", pad="<|end_of_text|>", unk=None, add_bos=True,
        add_space_prefix=None, filler="<|reserved_special_token_{}|>",
        chat_template=chat_templates.LLAMA3,
        split=_pretokenizer("{1,3}")),
}


@dataclass(frozen=True)
class Vocab:
    style: Style
    tokens: tuple[str, ...]
    token_types: tuple[int, ...]
    scores: tuple[float, ...] | None    # SentencePiece only
    merges: tuple[str, ...] | None      # BPE only, "left right"

    def id(self, token: str) -> int:
        return self.tokens.index(token)

    def write_to(self, writer: GGUFWriter) -> None:
        """Add the tokenizer.* metadata llama.cpp reads for this style."""
        s = self.style
        writer.add_tokenizer_model(s.model)
        writer.add_tokenizer_pre(s.pre)
        writer.add_token_list(list(self.tokens))
        writer.add_token_types(list(self.token_types))
        if self.scores is not None:
            writer.add_token_scores(list(self.scores))
        if self.merges is not None:
            writer.add_token_merges(list(self.merges))
        writer.add_bos_token_id(self.id(s.bos))
        writer.add_eos_token_id(self.id(s.eos))
        writer.add_pad_token_id(self.id(s.pad))
        if s.unk is not None:
            writer.add_unk_token_id(self.id(s.unk))
        writer.add_add_bos_token(s.add_bos)
        writer.add_add_eos_token(False)
        if s.add_space_prefix is not None:
            writer.add_add_space_prefix(s.add_space_prefix)
        writer.add_chat_template(s.chat_template)


def build_vocab(style_name: str, n_vocab: int) -> Vocab:
    """The ``style_name`` vocabulary with exactly ``n_vocab`` tokens."""
    style = STYLES[style_name]
    if style.model == "llama":
        return _spm_vocab(style, n_vocab)
    return _bpe_vocab(style, n_vocab)


# --- SentencePiece style ---------------------------------------------------

def _spm_vocab(style: Style, n_vocab: int) -> Vocab:
    chars = _spm_chars()
    fixed = len(style.specials) + 256 + len(chars)
    _check_size(n_vocab, fixed)
    taken = set(style.specials) | set(chars)
    pieces = _new_tokens((a + b for a, b in _spm_merges()), taken, n_vocab - fixed)
    fillers = _fillers(style, n_vocab - fixed - len(pieces), taken)

    special_types = [TokenType.UNKNOWN if t == style.unk else TokenType.CONTROL for t in style.specials]
    tokens = [*style.specials, *_byte_tokens(), *pieces, *chars, *fillers]
    types = [*special_types, *[TokenType.BYTE] * 256,
             *[TokenType.NORMAL] * (len(pieces) + len(chars)), *[TokenType.CONTROL] * len(fillers)]
    # a piece's score is minus its merge rank; characters rank after every piece
    scores = [*[0.0] * (len(style.specials) + 256),
              *[-float(r) for r in range(len(pieces) + len(chars))], *[0.0] * len(fillers)]
    return Vocab(style, tuple(tokens), tuple(int(t) for t in types), tuple(scores), None)


def _byte_tokens() -> list[str]:
    return [f"<0x{b:02X}>" for b in range(256)]


def _spm_lines() -> list[str]:
    """Corpus lines as SentencePiece sees them: a leading space, spaces as U+2581."""
    return [SPM_SPACE + line.replace(" ", SPM_SPACE) for line in CORPUS.splitlines() if line]


@functools.cache
def _spm_chars() -> tuple[str, ...]:
    """Characters that get a token: printable and seen at least twice, most frequent first."""
    counts = Counter("".join(_spm_lines()))
    kept = [c for c, n in counts.items() if n >= 2 and c.isprintable()]
    return tuple(sorted(kept, key=lambda c: (-counts[c], c)))


@functools.cache
def _spm_merges() -> tuple[tuple[str, str], ...]:
    """Merges over words of covered characters; uncovered ones split words, as they get no piece."""
    covered = re.escape("".join(_spm_chars()))
    words: Counter[tuple[str, ...]] = Counter()
    for line in _spm_lines():
        for chunk in re.findall(f"{SPM_SPACE}*[^{SPM_SPACE}]+|{SPM_SPACE}+", line):
            words.update(tuple(run) for run in re.findall(f"[{covered}]+", chunk))
    return tuple(learn_merges(words))


# --- byte-level BPE --------------------------------------------------------

def _bpe_vocab(style: Style, n_vocab: int) -> Vocab:
    byte_symbols = sorted(byte_to_unicode(), key=ord)  # GPT-2's vocabulary order
    fixed = 256 + len(style.specials)
    _check_size(n_vocab, fixed)
    merges = _bpe_merges(style)
    taken = set(byte_symbols) | set(style.specials)
    learned = _new_tokens((a + b for a, b in merges), taken, n_vocab - fixed)
    # keep the merges up to the one that made the last token we took
    n_merges = _merges_used(merges, learned)
    fillers = _fillers(style, n_vocab - fixed - len(learned), taken)

    tokens = [*byte_symbols, *learned, *style.specials, *fillers]
    types = [TokenType.NORMAL] * (256 + len(learned)) + [TokenType.CONTROL] * (len(style.specials) + len(fillers))
    merge_strings = tuple(f"{a} {b}" for a, b in merges[:n_merges])
    return Vocab(style, tuple(tokens), tuple(int(t) for t in types), None, merge_strings)


@functools.cache
def _bpe_merges(style: Style) -> tuple[tuple[str, str], ...]:
    """Merges learned within the pieces the style's pre-tokenizer splits the corpus into."""
    table = byte_to_unicode()
    words = Counter(tuple(table[b] for b in piece.encode()) for piece in style.split.findall(CORPUS))
    return tuple(learn_merges(words))


def _merges_used(merges: tuple[tuple[str, str], ...], learned: list[str]) -> int:
    if not learned:
        return 0
    last = learned[-1]
    return next(i for i, (a, b) in enumerate(merges) if a + b == last) + 1


# --- shared ----------------------------------------------------------------

def _check_size(n_vocab: int, minimum: int) -> None:
    if n_vocab < minimum:
        raise ValueError(f"n_vocab={n_vocab} is too small: this tokenizer needs at least {minimum} tokens "
                         "(specials, 256 bytes and base characters)")


def _new_tokens(candidates, taken: set[str], limit: int) -> list[str]:
    """Up to ``limit`` candidates, in order, that are not yet tokens (adds them to ``taken``)."""
    out: list[str] = []
    for text in candidates:
        if len(out) == limit:
            break
        if text not in taken:
            taken.add(text)
            out.append(text)
    return out


def _fillers(style: Style, count: int, taken: set[str]) -> list[str]:
    return _new_tokens((style.filler.format(i) for i in itertools.count()), taken, count)
