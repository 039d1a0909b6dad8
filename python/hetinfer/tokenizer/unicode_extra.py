"""Code points newer than Python's Unicode database, classified as llama.cpp's tables classify them.

llama.cpp's unicode-data.cpp follows Unicode 15.1; Python 3.10 ships Unicode
13.0, 3.11 14.0, 3.12 15.0. For a code point that Python calls unassigned (Cn)
the pre-tokenizer looks here for its general category class (L, M, N, P, S)
instead, so splitting matches llama.cpp on every Python from 3.10 to 3.13.
The ranges (hex, inclusive) are every such code point that llama.cpp's table
assigns and Python 3.10's does not; newer Pythons simply never ask for them.
"""

from __future__ import annotations

import bisect
import functools

_RANGES: dict[str, str] = {
    "L": (
        "870-887 889-88E 8B5 8C8-8C9 C5D CDD 170D 171F 1B4C 2C2F 2C5F 9FFD-9FFF A7C0-A7C1 A7D0-A7D1 "
        "A7D3 A7D5-A7D9 A7F2-A7F4 10570-1057A 1057C-1058A 1058C-10592 10594-10595 10597-105A1 "
        "105A3-105B1 105B3-105B9 105BB-105BC 10780-10785 10787-107B0 107B2-107BA 10F70-10F81 "
        "11071-11072 11075 1123F-11240 11740-11746 11AB0-11ABF 11F02 11F04-11F10 11F12-11F33 "
        "12F90-12FF0 1342F 13441-13446 16A70-16ABE 1AFF0-1AFF3 1AFF5-1AFFB 1AFFD-1AFFE 1B11F-1B122 "
        "1B132 1B155 1DF00-1DF1E 1DF25-1DF2A 1E030-1E06D 1E290-1E2AD 1E4D0-1E4EB 1E7E0-1E7E6 "
        "1E7E8-1E7EB 1E7ED-1E7EE 1E7F0-1E7FE 2A6DE-2A6DF 2B735-2B739 2EBF0-2EE5D 31350-323AF "
    ),
    "M": (
        "898-89F 8CA-8D2 C3C CF3 ECE 1715 180F 1AC1-1ACE 1DFA 10EFD-10EFF 10F82-10F85 11070 "
        "11073-11074 110C2 11241 11F00-11F01 11F03 11F34-11F3A 11F3E-11F42 13440 13447-13455 "
        "1CF00-1CF2D 1CF30-1CF46 1E08F 1E2AE 1E4EC-1E4EF "
    ),
    "N": (
        "11F50-11F59 16AC0-16AC9 1D2C0-1D2D3 1E4F0-1E4F9 "
    ),
    "P": (
        "61D 1B7D-1B7E 2E53-2E5D 10F86-10F89 116B9 11B00-11B09 11F43-11F4F 12FF1-12FF2 "
    ),
    "S": (
        "888 20C0 2FFC-2FFF 31EF FBC2 FD40-FD4F FDCF FDFE-FDFF 1CF50-1CFC3 1D1E9-1D1EA 1F6DC-1F6DF "
        "1F774-1F776 1F77B-1F77F 1F7D9 1F7F0 1F979 1F9CC 1FA75-1FA77 1FA7B-1FA7C 1FA87-1FA88 "
        "1FAA9-1FAAF 1FAB7-1FABD 1FABF 1FAC3-1FAC5 1FACE-1FACF 1FAD7-1FADB 1FAE0-1FAE8 1FAF0-1FAF8 "
    ),
}


@functools.cache
def _table() -> tuple[list[int], list[int], list[str]]:
    """(starts, ends, classes), sorted by start, for bisection."""
    rows = []
    for cls, text in _RANGES.items():
        for item in text.split():
            first, _, last = item.partition("-")
            rows.append((int(first, 16), int(last or first, 16), cls))
    rows.sort()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


def category_class(cp: int) -> str | None:
    """The class letter llama.cpp gives code point ``cp`` where Python has none, else None."""
    starts, ends, classes = _table()
    i = bisect.bisect_right(starts, cp) - 1
    return classes[i] if i >= 0 and cp <= ends[i] else None
