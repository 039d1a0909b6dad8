r"""Byte-level BPE pre-tokenizers: text -> pieces, as llama.cpp's unicode_regex_split.

The patterns use \p{L} (letter), \p{N} (number) and \s, which llama.cpp takes
from its own tables: \s is a fixed set of 25 code points, not Python's. Python's
`re` has no \p{..}, so, like llama.cpp's own std::regex fallback, the text is
first "collapsed": every non-ASCII code point becomes one marker character for
its class (whitespace, letter, number, punctuation, mark, symbol, other; code
points newer than Python's Unicode database come from ``unicode_extra``). The
patterns then need only ASCII classes, run at C speed, and a piece's offsets
in the collapsed text are its offsets in the original.

llama.cpp runs hand-written scanners for the llama3, qwen2 and gpt2 patterns;
the patterns below are those scanners' exact equivalents (a trailing \s+
alternative included). "default" is four patterns applied in turn, each
splitting the pieces of the one before into matches and the gaps between them.
"""

from __future__ import annotations

import functools
import re
import unicodedata

from .unicode_extra import category_class

# llama.cpp's whitespace set (unicode_set_whitespace), beyond ASCII
_WHITESPACE = frozenset("\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
                        "\u2009\u200a\u2028\u2029\u202f\u205f\u3000")

# Markers for non-ASCII code points: llama.cpp's collapse bytes (vertical tab for whitespace).
_MARKERS = {"N": "\xd1", "L": "\xd2", "P": "\xd3", "M": "\xd4", "S": "\xd5"}
_OTHER = "\xd0"   # separators that are not whitespace, controls, format, private use, unassigned

LETTER = "A-Za-z\xd2"
NUMBER = "0-9\xd1"
SPACE = "\t\n\x0b\x0c\r "   # ASCII whitespace in llama.cpp's set, plus the collapsed marker \x0b


def _ws(body: str) -> str:
    return f"[{SPACE}]{body}"


_WS_TAIL = _ws("+(?![^" + SPACE + "])") + "|" + _ws("+")   # \s+(?!\S)|\s+
_CONTRACTIONS_CI = "'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]"


def _llama3_like(digits: str) -> str:
    r"""llama3 and qwen2 differ only in how many digits a number piece holds (\p{N}{1,3} or \p{N})."""
    return (f"{_CONTRACTIONS_CI}|[^\r\n{LETTER}{NUMBER}]?[{LETTER}]+|[{NUMBER}]{digits}"
            f"| ?[^{SPACE}{LETTER}{NUMBER}]+[\r\n]*|{_ws('*')}[\r\n]+|{_WS_TAIL}")


_GPT2 = (f"'s|'t|'re|'ve|'m|'ll|'d| ?[{LETTER}]+| ?[{NUMBER}]+| ?[^{SPACE}{LETTER}{NUMBER}]+|{_WS_TAIL}")

# pre-tokenizer -> patterns applied in turn
PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "llama3": (re.compile(_llama3_like("{1,3}")),),
    "qwen2": (re.compile(_llama3_like("")),),
    "gpt2": (re.compile(_GPT2),),
    "default": (
        # [\p{P}\$\+<=>\^~\|]+ : llama.cpp's ASCII \p{P} is !-#%-*,-/:-;?-@[-]_{}
        re.compile("[\xd3!-#%-*,-/:-;?-@\\[-\\]_{}$+<=>^~|]+"),
        re.compile(_GPT2),
        re.compile(f"[{NUMBER}]+"),
        re.compile("[0-9][0-9][0-9]"),
    ),
}


@functools.lru_cache(maxsize=65536)
def _marker(ch: str) -> str:
    if ch in _WHITESPACE:
        return "\x0b"
    category = unicodedata.category(ch)
    cls = category_class(ord(ch)) if category == "Cn" else category[0]
    return _MARKERS.get(cls, _OTHER)


def collapse(text: str) -> str:
    """``text`` with each non-ASCII code point replaced by its class marker (same length)."""
    if text.isascii():
        return text
    return "".join([ch if ch < "\x80" else _marker(ch) for ch in text])


def split(text: str, pre: str) -> list[str]:
    """The pieces of ``text`` under pre-tokenizer ``pre`` (a key of PATTERNS)."""
    collapsed = collapse(text)
    spans = [(0, len(text))]
    for pattern in PATTERNS[pre]:
        spans = [s for start, end in spans for s in _split_span(pattern, collapsed, start, end)]
    return [text[a:b] for a, b in spans]


def _split_span(pattern: re.Pattern[str], s: str, start: int, end: int) -> list[tuple[int, int]]:
    """``s[start:end]`` cut into the matches of ``pattern`` and the gaps between them."""
    spans = []
    pos = start
    for m in pattern.finditer(s, start, end):
        if m.start() > pos:
            spans.append((pos, m.start()))
        spans.append(m.span())
        pos = m.end()
    if pos < end:
        spans.append((pos, end))
    return spans
