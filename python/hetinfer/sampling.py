"""Choosing the next token from a model's logits, as llama.cpp's default sampler chain does.

The chain, in llama.cpp's order: logit bias -> penalties (repeat, frequency and presence,
over the last ``repeat_last_n`` tokens) -> top-k -> top-p -> min-p ->
temperature -> a draw from the softmax. Top-p and min-p see the distribution at
temperature 1, since temperature comes after them. Temperature 0 is greedy:
the argmax after penalties, the lowest id among ties.

Top-p and min-p each keep a most-probable prefix of the candidates and min-p's
cut does not depend on the others, so min-p is applied first (a cheap
threshold) and only its survivors are sorted: with the defaults one call costs
one ``argpartition`` of the logits, no full sort.

Logprobs are those of the model's own distribution, log_softmax of the logits
as given (before penalties and truncation), as OpenAI's API reports them.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

MAX_LOGPROBS = 20  # OpenAI's limit on top_logprobs


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; the defaults are llama.cpp's. Bad values raise naming the argument.

    - ``temperature`` >= 0; 0 is greedy.
    - ``top_k`` >= 0: keep the k most likely tokens; 0 turns it off.
    - ``top_p`` in (0, 1]: keep the fewest most likely tokens whose probability
      sums to at least top_p; 1 turns it off.
    - ``min_p`` in [0, 1]: keep tokens at least min_p times as likely as the
      likeliest; 0 turns it off.
    - ``repeat_penalty`` > 0: logits of tokens among the last ``repeat_last_n``
      are divided by it when positive, multiplied when not; 1 turns it off.
    - ``repeat_last_n``: the window all three penalties look at; -1 the whole
      history, 0 no penalties.
    - ``frequency_penalty``, ``presence_penalty``: subtracted from a token's logit
      per occurrence in the window, and once if it occurs at all (negative favours).
    - ``seed``: the same seed and logits give the same tokens; None draws fresh entropy.
    - ``logit_bias``: {token id: value} added to those logits first (-inf bans a
      token), as OpenAI's and llama.cpp's logit_bias.
    - ``logprobs``: None computes none; n in 0..20 gives the chosen token's
      logprob and the n most likely tokens'.
    """

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0
    repeat_last_n: int = 64
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    logprobs: int | None = None
    logit_bias: Mapping[int, float] | None = None

    def __post_init__(self):
        _check_logit_bias(self.logit_bias)
        for name, kind, allowed, rule in _RULES:
            value = getattr(self, name)
            if value is None and name in ("seed", "logprobs"):
                continue
            _check_type(name, value, kind)
            if not allowed(value):
                raise ValueError(f"{name} must be {rule}, got {value!r}")


# (argument, type, test, what the test asks) for SamplingParams.__post_init__
_RULES = (
    ("temperature", float, lambda v: v >= 0, ">= 0 (0 is greedy)"),
    ("top_k", int, lambda v: v >= 0, ">= 0 (0 turns it off)"),
    ("top_p", float, lambda v: 0 < v <= 1, "in (0, 1] (1 turns it off)"),
    ("min_p", float, lambda v: 0 <= v <= 1, "in [0, 1] (0 turns it off)"),
    ("repeat_penalty", float, lambda v: v > 0, "> 0 (1 turns it off)"),
    ("repeat_last_n", int, lambda v: v >= -1, ">= -1 (-1 is the whole history, 0 turns penalties off)"),
    ("presence_penalty", float, lambda v: True, "a number"),
    ("frequency_penalty", float, lambda v: True, "a number"),
    ("seed", int, lambda v: v >= 0, ">= 0 or None"),
    ("logprobs", int, lambda v: 0 <= v <= MAX_LOGPROBS, f"in 0..{MAX_LOGPROBS} or None"),
)


def _check_logit_bias(bias: object) -> None:
    if bias is None:
        return
    if not isinstance(bias, Mapping):
        raise TypeError(f"logit_bias must be a mapping of token id to number, got {type(bias).__name__}")
    for tid, value in bias.items():
        if isinstance(tid, bool) or not isinstance(tid, numbers.Integral):
            raise TypeError(f"logit_bias keys must be token ids (int), got {tid!r}")
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value) or value == math.inf:
            raise ValueError(f"logit_bias[{tid}] must be a number or -inf, got {value!r}")


def check_logit_bias_ids(params: SamplingParams, n_vocab: int) -> None:
    """Raises ValueError naming the first logit_bias id outside [0, n_vocab)."""
    bad = [t for t in params.logit_bias or {} if not 0 <= t < n_vocab]
    if bad:
        raise ValueError(f"logit_bias token id {bad[0]} is outside the vocabulary [0, {n_vocab})")


def _check_type(name: str, value: object, kind: type) -> None:
    # bool is an int to Python, never a sampling setting.
    wanted = numbers.Integral if kind is int else numbers.Real
    if isinstance(value, bool) or not isinstance(value, wanted):
        noun = "an integer" if kind is int else "a number"
        raise TypeError(f"{name} must be {noun}, got {type(value).__name__}")
    if kind is float and not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


@dataclass(frozen=True)
class SampledToken:
    """The chosen token; ``logprob``/``top_logprobs`` are None unless SamplingParams.logprobs was set.

    ``top_logprobs`` lists (id, logprob) of the most likely tokens, most likely
    first (lower id first among equals).
    """

    id: int
    logprob: float | None = None
    top_logprobs: list[tuple[int, float]] | None = None


class Sampler:
    """Samples token after token for one sequence; it owns that sequence's random generator."""

    def __init__(self, params: SamplingParams, n_vocab: int):
        if not isinstance(params, SamplingParams):
            raise TypeError(f"params must be a SamplingParams, got {type(params).__name__}")
        if isinstance(n_vocab, bool) or not isinstance(n_vocab, numbers.Integral) or n_vocab < 1:
            raise ValueError(f"n_vocab must be a positive integer, got {n_vocab!r}")
        self.params, self.n_vocab = params, int(n_vocab)
        self._rng = np.random.default_rng(params.seed)
        check_logit_bias_ids(params, int(n_vocab))
        bias = params.logit_bias or {}
        self._bias_ids = np.fromiter(bias.keys(), np.int64, len(bias))       # (n_bias,)
        self._bias_vals = np.fromiter(bias.values(), np.float32, len(bias))  # (n_bias,)

    def _biased(self, logits: np.ndarray) -> np.ndarray:
        if not self._bias_ids.size:
            return logits
        out = logits.copy()
        out[self._bias_ids] += self._bias_vals
        if out.max() == -np.inf:
            raise ValueError("logit_bias bans every token: nothing can be sampled")
        return out

    def sample(self, logits: np.ndarray, history: Sequence[int] = ()) -> SampledToken:
        """The next token, given ``logits`` (n_vocab,) and the tokens so far (prompt included)."""
        raw = _checked_logits(logits, self.n_vocab)
        p = self.params
        x = _apply_penalties(self._biased(raw), _window(history, p.repeat_last_n, self.n_vocab), p)
        if p.temperature == 0:
            token = int(np.argmax(x))  # the first maximum: the lowest id among ties
        else:
            ids, vals = _truncate(x, p)
            token = int(ids[_draw(vals / p.temperature, self._rng)])
        if p.logprobs is None:
            return SampledToken(token)
        return SampledToken(token, *_logprobs(raw, token, p.logprobs))


def _checked_logits(logits: np.ndarray, n_vocab: int) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float32)
    if x.shape != (n_vocab,):
        raise ValueError(f"logits must have shape ({n_vocab},), got {x.shape}")
    top = x.max()  # one pass finds NaN (max propagates it), +inf and an all -inf row
    if np.isnan(top):
        raise ValueError("logits contain NaN")
    if top == np.inf:
        raise ValueError("logits contain +inf")
    if top == -np.inf:
        raise ValueError("every logit is -inf: no token can be sampled")
    return x


def _window(history: Sequence[int], last_n: int, n_vocab: int) -> np.ndarray:
    """The ids penalties look at: the last ``last_n`` of ``history`` (-1: all of it)."""
    if last_n == 0:
        return np.empty(0, np.int64)
    tail = np.asarray(history[-last_n:] if last_n > 0 else history)
    if tail.size and (tail.ndim != 1 or tail.dtype.kind not in "iu"):
        raise ValueError(f"history must be a sequence of token ids, got {tail.dtype} of shape {tail.shape}")
    if tail.size and (tail.min() < 0 or tail.max() >= n_vocab):
        raise ValueError(f"history holds ids outside 0..{n_vocab - 1}")
    return tail.astype(np.int64, copy=False)


def _apply_penalties(logits: np.ndarray, window: np.ndarray, p: SamplingParams) -> np.ndarray:
    """llama.cpp's penalties sampler; ``logits`` is left alone (a changed copy is returned)."""
    if window.size == 0 or (p.repeat_penalty == 1 and p.frequency_penalty == 0 and p.presence_penalty == 0):
        return logits
    ids, counts = np.unique(window, return_counts=True)
    seen = logits[ids]
    # Dividing a negative logit would make the token likelier, so those are multiplied.
    penalty = np.float32(p.repeat_penalty)  # float32 arithmetic throughout, as in llama.cpp
    seen = np.where(seen <= 0, seen * penalty, seen / penalty)
    seen -= counts.astype(np.float32) * np.float32(p.frequency_penalty) + np.float32(p.presence_penalty)
    out = logits.copy()
    out[ids] = seen
    return out


def _truncate(x: np.ndarray, p: SamplingParams) -> tuple[np.ndarray, np.ndarray]:
    """Ids and logits that survive top-k, min-p and top-p (most likely first when top-p is on)."""
    if 0 < p.top_k < x.size:
        ids = np.argpartition(x, -p.top_k)[-p.top_k:]
        vals = x[ids]
    else:
        ids, vals = None, x
    # top-p measures mass against everything top-k kept, before min-p thins it out
    log_norm = _logsumexp(vals) if p.top_p < 1 else 0.0
    # min-p's floor; without min-p, the lowest float still drops -inf (masked) tokens
    floor = vals.max() + np.float32(math.log(p.min_p)) if p.min_p > 0 else np.finfo(np.float32).min
    keep = np.flatnonzero(vals >= floor)
    ids, vals = (keep if ids is None else ids[keep]), vals[keep]
    return _top_p(ids, vals, log_norm, p.top_p) if p.top_p < 1 else (ids, vals)


def _top_p(ids: np.ndarray, vals: np.ndarray, log_norm: float, top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """The fewest most likely tokens whose probability (exp(val - log_norm)) sums to top_p or more.

    Sorting all 262144 logits takes tens of ms, so only a head holding that
    mass is sorted: the best 256, 2048, ... until their mass reaches top_p.
    (Tokens tied with the head's last one may be cut by id order within the head only.)
    """
    size = 256
    while size < vals.size:
        head = np.argpartition(vals, -size)[-size:]
        if np.exp(vals[head].astype(np.float64) - log_norm).sum() >= top_p:
            ids, vals = ids[head], vals[head]
            break
        size *= 8
    order = np.lexsort((ids, -vals))  # most likely first, lower id first among equals
    ids, vals = ids[order], vals[order]
    mass = np.cumsum(np.exp(vals.astype(np.float64) - log_norm))
    n_keep = int(np.searchsorted(mass, top_p)) + 1  # through the first token reaching top_p
    return ids[:n_keep], vals[:n_keep]


def _draw(scaled: np.ndarray, rng: np.random.Generator) -> int:
    """An index drawn with probability softmax(scaled)."""
    weights = np.cumsum(np.exp(scaled - scaled.max()), dtype=np.float64)
    last = int(np.searchsorted(weights, weights[-1]))  # the last index with weight (exp can underflow to 0)
    return min(int(np.searchsorted(weights, rng.random() * weights[-1], side="right")), last)


def _logsumexp(x: np.ndarray) -> float:
    top = float(x.max())  # float64 throughout: top-p's cut at 0.999 of 262144 tokens is that fine
    return top + math.log(float(np.exp(x.astype(np.float64) - top).sum()))


def _logprobs(raw: np.ndarray, token: int, n: int) -> tuple[float, list[tuple[int, float]]]:
    """The chosen token's logprob and the ``n`` best (id, logprob), under softmax(raw)."""
    log_norm = _logsumexp(raw)
    n = min(n, raw.size)
    best = np.argpartition(raw, -n)[-n:] if n else np.empty(0, np.int64)
    best = best[np.lexsort((best, -raw[best]))]
    return float(raw[token]) - log_norm, [(int(i), float(raw[i]) - log_norm) for i in best]
