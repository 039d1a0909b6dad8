"""A small, deterministic byte-pair-encoding trainer.

Both vocabulary styles use it: SentencePiece-style vocabularies learn over
characters, byte-level BPE over the GPT-2 byte alphabet. Only the symbols differ.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping

Pair = tuple[str, str]


def learn_merges(words: Mapping[tuple[str, ...], int]) -> list[Pair]:
    """Every merge, in rank order, learned from ``words`` (symbol sequence -> frequency).

    Each step merges the most frequent adjacent pair; ties go to the pair that
    sorts first, so the result depends on nothing but the input. Training runs
    until every word is one symbol: pairs seen once still make whole-word
    tokens, as the vocabularies of real models (trained on far more text) have.
    """
    symbols = [list(w) for w in words]
    freqs = list(words.values())
    counts: Counter[Pair] = Counter()
    # word indices that may hold a pair; may go stale, which only costs a no-op merge
    holders: defaultdict[Pair, set[int]] = defaultdict(set)
    for i, word in enumerate(symbols):
        _count_pairs(word, freqs[i], i, counts, holders)

    merges: list[Pair] = []
    while counts:
        best = min(counts, key=lambda p: (-counts[p], p))
        merges.append(best)
        for i in sorted(holders.pop(best)):
            _count_pairs(symbols[i], -freqs[i], i, counts, holders)
            symbols[i] = _merge(symbols[i], best)
            _count_pairs(symbols[i], freqs[i], i, counts, holders)
    return merges


def _count_pairs(word: list[str], weight: int, index: int,
                 counts: Counter[Pair], holders: defaultdict[Pair, set[int]]) -> None:
    """Add ``weight`` to the count of every adjacent pair of ``word``."""
    for pair in zip(word, word[1:]):
        counts[pair] += weight
        if counts[pair] <= 0:
            del counts[pair]
        elif weight > 0:
            holders[pair].add(index)


def _merge(word: list[str], pair: Pair) -> list[str]:
    """``word`` with every occurrence of ``pair`` (left to right) fused into one symbol."""
    out: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(word[i] + word[i + 1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out
