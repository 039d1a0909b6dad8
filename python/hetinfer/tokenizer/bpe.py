"""Byte-level BPE ("gpt2" model), as llama.cpp's llm_tokenizer_bpe.

Each pre-tokenized piece is written as GPT-2 byte symbols (one printable
character per UTF-8 byte), then adjacent symbols merge in the order of
tokenizer.ggml.merges (earlier merges first). A piece always tokenizes the
same way, so results are cached per piece.
"""

from __future__ import annotations

import functools

from . import pretokenize
from .merge import merge_symbols
from .vocab import Vocab, byte_text

CACHE_SIZE = 1 << 16   # pieces remembered per tokenizer


@functools.cache
def byte_to_unicode() -> tuple[str, ...]:
    """GPT-2's map from a byte to the printable character that stands for it in token texts."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping = {b: chr(b) for b in printable}
    others = [b for b in range(256) if b not in mapping]
    mapping.update({b: chr(256 + i) for i, b in enumerate(others)})
    return tuple(mapping[b] for b in range(256))


@functools.cache
def unicode_to_byte() -> dict[str, int]:
    """The inverse of byte_to_unicode."""
    return {ch: b for b, ch in enumerate(byte_to_unicode())}


class BpeEncoder:
    """Encodes text fragments with one vocabulary's merges and pre-tokenizer."""

    def __init__(self, vocab: Vocab):
        self._token_to_id = vocab.token_to_id
        self._pre = vocab.pre
        self._ignore_merges = vocab.ignore_merges
        self._ranks = _ranks(vocab.merges)
        self._byte_chars = byte_to_unicode()
        self._encode_piece = functools.lru_cache(maxsize=CACHE_SIZE)(self._encode_piece_uncached)

    def encode(self, text: str) -> list[int]:
        """Ids of one text fragment."""
        out: list[int] = []
        for piece in pretokenize.split(text, self._pre):
            out.extend(self._encode_piece(piece))
        return out

    def _encode_piece_uncached(self, piece: str) -> tuple[int, ...]:
        word = "".join([self._byte_chars[b] for b in piece.encode("utf-8")])
        # llama3-style vocabularies take a whole piece that is a token as is, merges or not
        if self._ignore_merges and word in self._token_to_id:
            return (self._token_to_id[word],)
        out: list[int] = []
        for symbol in merge_symbols(list(word), self._priority):
            tid = self._token_to_id.get(symbol)
            if tid is not None:
                out.append(tid)
                continue
            # a symbol without a token (an inconsistent vocabulary): llama.cpp emits the
            # one-byte tokens of its UTF-8 text, skipping bytes that have none
            singles = (self._token_to_id.get(byte_text(b)) for b in symbol.encode("utf-8"))
            out.extend(t for t in singles if t is not None)
        return tuple(out)

    def _priority(self, left: str, right: str) -> int | None:
        return self._ranks.get((left, right))


def _ranks(merges: list[str]) -> dict[tuple[str, str], int]:
    """Merge ranks as llama.cpp parses them: split at the first space after the first
    character; a line without one becomes ("", ""); the first of duplicate pairs keeps its rank."""
    ranks: dict[tuple[str, str], int] = {}
    for rank, line in enumerate(merges):
        cut = line.find(" ", 1)
        pair = (line[:cut], line[cut + 1:]) if cut != -1 else ("", "")
        ranks.setdefault(pair, rank)
    return ranks
