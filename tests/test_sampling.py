"""hetinfer.sampling against a plain numpy rendering of llama.cpp's sampler chain."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from hetinfer.sampling import SampledToken, Sampler, SamplingParams, _apply_penalties, _truncate, _window

F32 = np.float32


def random_logits(rng, n_vocab, scale=3.0):
    return (rng.standard_normal(n_vocab) * scale).astype(F32)


def reference_penalties(logits, history, p):
    """llama.cpp's llama_sampler_penalties_apply, one token at a time in float32."""
    x = logits.copy()
    window = {-1: history, 0: []}.get(p.repeat_last_n, history[-p.repeat_last_n:])
    for token, count in Counter(window).items():
        v = x[token]
        v = v * F32(p.repeat_penalty) if v <= 0 else v / F32(p.repeat_penalty)
        x[token] = v - (F32(count) * F32(p.frequency_penalty) + F32(count > 0) * F32(p.presence_penalty))
    return x


def reference_kept(x, p):
    """Ids left by top-k -> top-p -> min-p, by a full sort (most likely first, lower id among equals)."""
    order = np.lexsort((np.arange(x.size), -x)).tolist()
    if 0 < p.top_k < x.size:
        order = order[:p.top_k]
    if p.top_p < 1:
        probs = np.exp(x[order].astype(np.float64) - x[order].max())
        mass = np.cumsum(probs / probs.sum())
        order = order[:next((i + 1 for i, m in enumerate(mass) if m >= p.top_p), len(order))]
    if p.min_p > 0:
        floor = F32(x.max()) + F32(math.log(p.min_p))  # llama.cpp: max_logit + logf(min_p), in float32
        order = [i for i in order if x[i] >= floor]
    return order


def reference_distribution(logits, history, p):
    """P(token) under the whole chain, over the vocabulary."""
    x = reference_penalties(logits, history, p)
    kept = reference_kept(x, p)
    scaled = x[kept].astype(np.float64) / p.temperature
    dist = np.zeros(x.size)
    dist[kept] = np.exp(scaled - scaled.max()) / np.exp(scaled - scaled.max()).sum()
    return dist


def draws(sampler, logits, n, history=()):
    return [sampler.sample(logits, history).id for _ in range(n)]


def test_greedy_is_the_argmax(rng):
    logits = random_logits(rng, 262144)
    assert Sampler(SamplingParams(temperature=0), logits.size).sample(logits).id == int(np.argmax(logits))


def test_greedy_breaks_ties_by_lowest_id(rng):
    logits = random_logits(rng, 1000)
    logits[[17, 400, 901]] = logits.max() + 1
    assert Sampler(SamplingParams(temperature=0), 1000).sample(logits).id == 17


@pytest.mark.parametrize("temperature", [0.1, 0.8, 1.0, 5.0])
def test_top_k_1_is_greedy_at_any_temperature(rng, temperature):
    logits = random_logits(rng, 5000)
    sampler = Sampler(SamplingParams(temperature=temperature, top_k=1, seed=int(rng.integers(2**32))), 5000)
    assert set(draws(sampler, logits, 50)) == {int(np.argmax(logits))}


@pytest.mark.parametrize("last_n", [-1, 0, 1, 8, 64, 1000])
@pytest.mark.parametrize("repeat, frequency, presence", [(1.3, 0.0, 0.0), (1.0, 0.4, 0.0), (1.0, 0.0, 0.7),
                                                         (1.1, 0.2, -0.3), (0.8, -0.5, 1.5)])
def test_penalties_follow_llama_cpp_formulas(rng, last_n, repeat, frequency, presence):
    logits = random_logits(rng, 300)  # both signs, so both branches of the repeat penalty are taken
    history = [int(t) for t in rng.integers(0, 300, 200)] + [5, 5, 5]
    p = SamplingParams(repeat_penalty=repeat, frequency_penalty=frequency, presence_penalty=presence,
                       repeat_last_n=last_n)
    got = _apply_penalties(logits, _window(history, last_n, 300), p)
    np.testing.assert_array_equal(got, reference_penalties(logits, history, p))


def test_penalties_leave_the_callers_logits_and_steer_greedy():
    logits = np.array([5.0, 4.0, -1.0, 0.0], F32)
    sampler = Sampler(SamplingParams(temperature=0, repeat_penalty=2.0), 4)
    assert sampler.sample(logits, [0]).id == 1  # 5 / 2 < 4
    assert logits[0] == 5.0
    assert Sampler(SamplingParams(temperature=0, presence_penalty=10.0), 4).sample(logits, [0, 1]).id == 3


@pytest.mark.parametrize("top_k, top_p, min_p", [
    (0, 0.5, 0.0), (0, 0.9, 0.0), (0, 0.999, 0.0), (0, 1e-9, 0.0),   # top-p alone; a tiny top_p keeps one
    (0, 1.0, 0.05), (0, 1.0, 0.3), (0, 1.0, 1.0),                    # min-p alone
    (40, 0.95, 0.05), (5, 0.5, 0.0), (2000, 0.8, 0.01), (1, 0.9, 0.5),
])
@pytest.mark.parametrize("n_vocab", [50, 4000, 262144])
def test_truncation_keeps_what_llama_cpp_keeps(rng, n_vocab, top_k, top_p, min_p):
    x = random_logits(rng, n_vocab, scale=float(rng.uniform(0.5, 4)))
    p = SamplingParams(top_k=top_k, top_p=top_p, min_p=min_p)
    ids, vals = _truncate(x, p)
    expected = reference_kept(x, p)
    if top_p == 1:  # without top-p nothing needs sorting, and nothing is
        ids, expected = np.sort(ids), sorted(expected)
    assert ids.tolist() == expected
    np.testing.assert_array_equal(vals, x[ids])


def test_masked_tokens_are_never_drawn(rng):
    logits = np.full(100, -np.inf, F32)
    logits[[3, 50]] = [0.0, 0.5]
    sampler = Sampler(SamplingParams(top_k=0, top_p=1.0, min_p=0.0, temperature=2.0, seed=7), 100)
    assert set(draws(sampler, logits, 300)) == {3, 50}


def test_same_seed_same_tokens_other_seed_other_tokens(rng):
    logits_per_step = [random_logits(rng, 2000, scale=1.0) for _ in range(200)]

    def run(seed):
        sampler = Sampler(SamplingParams(seed=seed, temperature=1.5, top_k=0, min_p=0.0), 2000)
        return [sampler.sample(logits, []).id for logits in logits_per_step]

    assert run(1234) == run(1234)
    assert run(1234) != run(1235)


def test_draws_follow_the_truncated_tempered_softmax():
    """20000 draws over 12 tokens match the reference distribution.

    Everything is seeded, so the result is fixed; the bound is 0.02 total
    variation, about four times the ~0.005 expected from 20000 draws.
    """
    logits = random_logits(np.random.default_rng(2024), 12, scale=1.5)
    history = [0, 0, 3, 7]
    p = SamplingParams(temperature=0.7, top_k=9, top_p=0.9, min_p=0.03, repeat_penalty=1.2,
                       frequency_penalty=0.1, presence_penalty=0.2, seed=99)
    expected = reference_distribution(logits, history, p)
    counts = np.bincount(draws(Sampler(p, 12), logits, 20000, history), minlength=12)
    assert set(np.flatnonzero(counts)) <= set(np.flatnonzero(expected))
    assert 0.5 * np.abs(counts / counts.sum() - expected).sum() < 0.02
    assert (expected > 0).sum() >= 3  # the test exercises sampling, not a forced choice


@pytest.mark.parametrize("n", [0, 1, 5, 20])
def test_logprobs_are_the_models_distribution(rng, n):
    logits = random_logits(rng, 3000)
    p = SamplingParams(logprobs=n, repeat_penalty=1.5, seed=3)
    token = Sampler(p, 3000).sample(logits, [int(np.argmax(logits))])
    # log_softmax of the logits as given: penalties do not change what is reported
    reference = logits.astype(np.float64) - np.log(np.exp(logits.astype(np.float64)).sum())
    assert token.logprob == pytest.approx(reference[token.id], abs=1e-4)
    best = np.argsort(-reference, kind="stable")[:n]
    assert [i for i, _ in token.top_logprobs] == best.tolist()
    np.testing.assert_allclose([lp for _, lp in token.top_logprobs], reference[best], atol=1e-4)


def test_logprobs_on_a_vocabulary_smaller_than_asked():
    token = Sampler(SamplingParams(logprobs=20, temperature=0), 3).sample(np.array([0.0, 1.0, 1.0], F32))
    assert token.id == 1
    assert [i for i, _ in token.top_logprobs] == [1, 2, 0]


def test_no_logprobs_unless_asked():
    assert Sampler(SamplingParams(temperature=0), 3).sample(np.zeros(3, F32)) == SampledToken(0, None, None)


@pytest.mark.parametrize("kwargs, error, name", [
    ({"temperature": -0.1}, ValueError, "temperature"),
    ({"temperature": float("nan")}, ValueError, "temperature"),
    ({"temperature": "hot"}, TypeError, "temperature"),
    ({"top_k": -1}, ValueError, "top_k"),
    ({"top_k": 2.5}, TypeError, "top_k"),
    ({"top_k": True}, TypeError, "top_k"),
    ({"top_p": 0.0}, ValueError, "top_p"),
    ({"top_p": 1.5}, ValueError, "top_p"),
    ({"min_p": -0.01}, ValueError, "min_p"),
    ({"min_p": 1.01}, ValueError, "min_p"),
    ({"repeat_penalty": 0.0}, ValueError, "repeat_penalty"),
    ({"repeat_last_n": -2}, ValueError, "repeat_last_n"),
    ({"presence_penalty": float("inf")}, ValueError, "presence_penalty"),
    ({"frequency_penalty": None}, TypeError, "frequency_penalty"),
    ({"seed": -1}, ValueError, "seed"),
    ({"seed": 1.0}, TypeError, "seed"),
    ({"logprobs": 21}, ValueError, "logprobs"),
    ({"logprobs": -1}, ValueError, "logprobs"),
    ({"logit_bias": [1, 2]}, TypeError, "logit_bias"),
    ({"logit_bias": {"5": 1.0}}, TypeError, "logit_bias"),
    ({"logit_bias": {5: float("nan")}}, ValueError, "logit_bias"),
    ({"logit_bias": {5: float("inf")}}, ValueError, "logit_bias"),
])
def test_invalid_params_name_the_argument(kwargs, error, name):
    with pytest.raises(error, match=name):
        SamplingParams(**kwargs)


def test_defaults_are_llama_cpps():
    p = SamplingParams()
    assert (p.temperature, p.top_k, p.top_p, p.min_p, p.repeat_penalty, p.repeat_last_n, p.presence_penalty,
            p.frequency_penalty, p.seed, p.logprobs) == (0.8, 40, 0.95, 0.05, 1.0, 64, 0.0, 0.0, None, None)


@pytest.mark.parametrize("logits, match", [
    (np.array([0.0, np.nan, 1.0], F32), "NaN"),
    (np.array([0.0, np.inf, 1.0], F32), r"\+inf"),
    (np.full(3, -np.inf, F32), "every logit is -inf"),
    (np.zeros(4, F32), r"shape \(3,\)"),
    (np.zeros((1, 3), F32), r"shape \(3,\)"),
])
def test_bad_logits_raise(logits, match):
    with pytest.raises(ValueError, match=match):
        Sampler(SamplingParams(), 3).sample(logits)


@pytest.mark.parametrize("history, match", [([0, 3], "outside 0..2"), ([-1], "outside"), ([0.5], "token ids")])
def test_bad_history_raises(history, match):
    with pytest.raises(ValueError, match=match):
        Sampler(SamplingParams(repeat_penalty=1.1), 3).sample(np.zeros(3, F32), history)


@pytest.mark.parametrize("n_vocab", [0, -5, 2.0, True])
def test_bad_vocabulary_size_raises(n_vocab):
    with pytest.raises(ValueError, match="n_vocab"):
        Sampler(SamplingParams(), n_vocab)


def test_logit_bias_bans_and_favours_tokens(rng):
    logits = rng.standard_normal(50).astype(np.float32)
    best = int(np.argmax(logits))
    banned = Sampler(SamplingParams(temperature=0, logit_bias={best: -np.inf}), 50).sample(logits)
    assert banned.id != best and banned.id == int(np.argsort(logits)[-2])
    assert Sampler(SamplingParams(temperature=0, logit_bias={7: 100.0}), 50).sample(logits).id == 7
    draws = Sampler(SamplingParams(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0, seed=1,
                                   logit_bias={t: -np.inf for t in range(49)}), 50)
    assert {draws.sample(logits).id for _ in range(20)} == {49}


def test_logit_bias_errors():
    with pytest.raises(ValueError, match="outside the vocabulary"):
        Sampler(SamplingParams(logit_bias={50: 1.0}), 50)
    with pytest.raises(ValueError, match="bans every token"):
        Sampler(SamplingParams(logit_bias={t: -np.inf for t in range(3)}), 3).sample(np.zeros(3, np.float32))
