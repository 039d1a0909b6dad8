"""Ids -> bytes, as llama.cpp's token_to_piece and detokenize.

A token's piece is bytes, not text: byte-fallback and byte-level tokens hold
parts of UTF-8 characters, so decoding joins all pieces before it decodes.
"""

from __future__ import annotations

from collections.abc import Iterable

from .bpe import unicode_to_byte
from .spm import SPACE
from .vocab import SPECIAL, Attr, Vocab


class Detokenizer:
    """Pieces and whole-sequence decoding for one vocabulary."""

    def __init__(self, vocab: Vocab):
        self._vocab = vocab
        self._pieces: dict[int, bytes] = {}   # id -> piece with specials rendered, filled lazily

    def piece(self, tid: int, special: bool = True) -> bytes:
        """The bytes token ``tid`` stands for; control and unknown tokens are empty unless ``special``."""
        tid = self._vocab.check_id(tid)
        if not special and self._vocab.attrs[tid] & SPECIAL:
            return b""
        cached = self._pieces.get(tid)
        if cached is None:
            cached = self._pieces[tid] = self._render(tid)
        return cached

    def detokenize(self, ids: Iterable[int], remove_special: bool, unparse_special: bool) -> bytes:
        """llama.cpp's detokenize: join the pieces, drop the space prefix, clean spaces if the model does.

        ``remove_special`` drops a leading BOS / trailing EOS that the model adds itself;
        ``unparse_special`` renders control tokens as their text.
        """
        v = self._vocab
        ids = [v.check_id(t) for t in ids]
        # the space SentencePiece put before the first word goes, unless a BOS was removed first
        remove_space = v.add_space_prefix
        if remove_special and v.add_bos and ids and ids[0] == v.ids["bos"]:
            remove_space = False
            ids = ids[1:]
        if remove_special and v.add_eos and ids and ids[-1] == v.ids["eos"]:
            ids = ids[:-1]
        pieces = [self.piece(t, unparse_special) for t in ids]
        if remove_space and pieces and pieces[0].startswith(b" "):
            pieces[0] = pieces[0][1:]
        text = b"".join(pieces)
        return clean_spaces(text) if v.clean_spaces else text

    def _render(self, tid: int) -> bytes:
        v = self._vocab
        text, attr = v.tokens[tid], v.attrs[tid]
        if attr & (SPECIAL | Attr.USER_DEFINED):
            return _utf8(text)
        if attr & Attr.NORMAL:
            return _utf8(text.replace(SPACE, " ")) if v.kind == "spm" else _bpe_bytes(text)
        if attr & Attr.BYTE:
            return bytes([int(text[3:5], 16)])   # "<0xXX>"
        return b""   # unused and undefined tokens print nothing


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="surrogateescape")


def _bpe_bytes(text: str) -> bytes:
    """A byte-level token's bytes; characters outside GPT-2's map print as llama.cpp prints them."""
    table = unicode_to_byte()
    out = bytearray()
    for ch in text:
        b = table.get(ch)
        if b is not None:
            out.append(b)
        else:
            out += b"[UNK_BYTE_0x" + _utf8(ch).hex().encode() + _utf8(text) + b"]"
    return bytes(out)


def clean_spaces(text: bytes) -> bytes:
    """llama.cpp's clean_up_tokenization_spaces, three in-place passes ported as they are.

    1. drop the space before ? ! . ,   2. " ' " becomes "'"   3. drop the space before 's 'm 're 've
    """
    buf = bytearray(text)
    n = _drop_space_before_punct(buf, len(buf))
    n = _join_lone_apostrophe(buf, n)
    n = _drop_space_before_contraction(buf, n)
    return bytes(buf[:n])


def _drop_space_before_punct(t: bytearray, n: int) -> int:
    if not any(b" " + p in t for p in (b"?", b"!", b".", b",")):
        return n
    total = 1 if n else 0
    for i in range(1, n):
        x = t[i]
        if t[i - 1] == 0x20 and x in b"?!.,":
            total -= 1
        t[total] = x
        total += 1
    return total


def _join_lone_apostrophe(t: bytearray, n: int) -> int:
    if b" ' " not in t[:n]:
        return n
    total = 1 if n else 0
    i = 1
    while i < n:
        x = t[i]
        if x == 0x27 and i + 1 < n and t[i - 1] == 0x20 and t[i + 1] == 0x20:
            total -= 1          # the space before
            i += 1
            t[i] = 0            # the space after: blanked and skipped, as llama.cpp does
        t[total] = x
        total += 1
        i += 1
    return total


def _drop_space_before_contraction(t: bytearray, n: int) -> int:
    if b" '" not in t[:n]:
        return n
    total = 1 if n else 0
    for i in range(1, n):
        x = t[i]
        if t[i - 1] == 0x20 and x == 0x27 and i + 1 < n:
            x1 = t[i + 1]
            x2 = t[i + 2] if i + 2 < n else None
            if x1 in b"sm" or (x2 is not None and bytes((x1, x2)) in (b"re", b"ve")):
                total -= 1
        t[total] = x
        total += 1
    return total
