"""Cutting special tokens out of text before it is tokenized (llama.cpp's tokenizer_st_partition).

llama.cpp takes the special tokens longest text first and, for each, splits
every remaining text fragment at its leftmost non-overlapping occurrences.
User-defined tokens are always cut out; control and unknown tokens only when
the caller asks to parse special tokens. The order matters when specials
overlap, so it is kept exactly; to stay fast with thousands of specials
(Gemma has 6,400) a trie first finds the few that occur in the text at all.
"""

from __future__ import annotations

import re

from .vocab import SPECIAL, Attr, Vocab

Fragment = str | int   # raw text still to tokenize, or a token id already decided


class SpecialTokens:
    """The special tokens of one vocabulary, in llama.cpp's matching order."""

    def __init__(self, vocab: Vocab):
        marked = [i for i, a in enumerate(vocab.attrs) if a & (Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN)]
        # llama.cpp sorts by text length, longest first, with an unstable std::sort;
        # ties are ordered by id here, which only matters for equal-length overlapping texts.
        marked.sort(key=lambda i: -len(vocab.tokens[i].encode("utf-8", errors="surrogateescape")))
        self._texts = vocab.tokens
        self._all = marked
        self._user = [i for i in marked if not vocab.attrs[i] & SPECIAL]
        self._finders: dict[bool, _Finder] = {}

    def partition(self, text: str, parse_special: bool) -> list[Fragment]:
        """``text`` as fragments: text pieces and the ids of the special tokens found between them."""
        if not text:
            return []
        finder = self._finders.get(parse_special)
        if finder is None:
            finder = self._finders[parse_special] = _Finder(self._all if parse_special else self._user,
                                                            self._texts)
        present = finder.present(text)
        fragments: list[Fragment] = [text]
        for tid in (i for i in finder.order if i in present):
            fragments = _split_all(fragments, self._texts[tid], tid)
        return fragments


def _split_all(fragments: list[Fragment], needle: str, tid: int) -> list[Fragment]:
    """Replace each occurrence of ``needle`` in the text fragments by ``tid``, dropping empty pieces."""
    out: list[Fragment] = []
    for frag in fragments:
        if isinstance(frag, int) or needle not in frag:
            out.append(frag)
            continue
        pieces = frag.split(needle)
        for k, piece in enumerate(pieces):
            if k:
                out.append(tid)
            if piece:
                out.append(piece)
    return out


class _Finder:
    """A trie over some special tokens' texts, answering which of them occur in a text."""

    def __init__(self, order: list[int], texts: list[str]):
        self.order = order
        self._root: dict = {}
        for tid in order:
            node = self._root
            for ch in texts[tid]:
                node = node.setdefault(ch, {})
            node.setdefault(None, []).append(tid)   # key None: the ids whose text ends here
        starts = "".join(ch for ch in self._root if ch is not None)
        self._start = re.compile("[" + re.escape(starts) + "]") if starts else None

    def present(self, text: str) -> set[int]:
        """Ids of the tokens that occur somewhere in ``text``."""
        found: set[int] = set()
        if self._start is None:
            return found
        for m in self._start.finditer(text):
            node = self._root
            for j in range(m.start(), len(text)):
                node = node.get(text[j])
                if node is None:
                    break
                found.update(node.get(None, ()))
        return found
