"""Greedy pairwise merging, the loop shared by llama.cpp's SentencePiece and BPE sessions.

Both start from one symbol per character and keep merging the adjacent pair
with the best priority; on a tie the pair further left wins. llama.cpp keeps
candidate pairs in a priority queue and drops entries made stale by earlier
merges; so does this, which keeps long inputs (a whole Gemma prompt is one
SentencePiece run) at O(n log n).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

# priority(left, right) -> sort key (lower merges first), or None when the pair never merges
Priority = Callable[[str, str], "float | int | None"]


def merge_symbols(symbols: list[str], priority: Priority) -> list[str]:
    """The symbols left after merging ``symbols`` (non-empty strings) in ``priority`` order."""
    n = len(symbols)
    if n < 2:
        return symbols
    text = list(symbols)          # (n,) current text of each symbol; "" once merged into its left
    nxt = list(range(1, n + 1))   # (n,) index of the next live symbol, -1 at the end
    nxt[-1] = -1
    prv = list(range(-1, n - 1))  # (n,) index of the previous live symbol, -1 at the start
    heap: list[tuple] = []

    def push(left: int, right: int) -> None:
        key = priority(text[left], text[right])
        if key is not None:
            heapq.heappush(heap, (key, left, right, text[left] + text[right]))

    for i in range(n - 1):
        push(i, i + 1)
    while heap:
        _, left, right, joined = heapq.heappop(heap)
        # a pair is stale once either side has changed since it was queued
        if not text[right] or text[left] + text[right] != joined:
            continue
        text[left], text[right] = joined, ""
        nxt[left] = nxt[right]
        if nxt[right] != -1:
            prv[nxt[right]] = left
        if prv[left] != -1:
            push(prv[left], left)
        if nxt[left] != -1:
            push(left, nxt[left])
    return [t for t in text if t]
