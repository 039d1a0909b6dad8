"""KV cache shift (llama.cpp's context shift) on every architecture.

A whole sequence moved by delta must give the logits of the same tokens
prefilled at the new positions (hidden states depend on positions only through
their differences). Dropping cells is not undone this way (later tokens saw
the dropped ones), so removal is tested on the tail, where it is exact.
NMSE bounds, F32 weights (no activation rounding): f32 cache 1e-8, f16 1e-5,
q8_0 3e-3 (measured over five seeds on llama and gemma3: 4e-13, 3e-7, 2e-4;
shifted keys are rounded to the cache type a second time).
"""

from __future__ import annotations

import numpy as np
import pytest

from hetinfer.model import Model
from hetinfer.model.generate import Generation
from random_models import ARCHS, model_factory, nmse

@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    get = model_factory(tmp_path_factory.mktemp("shift"), seed=5)
    return lambda arch: get(arch, "F32")


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cache,bound", [("f32", 1e-8), ("f16", 1e-5), ("q8_0", 3e-3)])
@pytest.mark.parametrize("start,delta", [(9, -9), (0, 5)])
def test_shifted_sequence_equals_one_computed_at_new_positions(model_path, rng, arch, cache, bound, start, delta):
    # Hidden states depend on positions only through their differences, so a
    # whole sequence moved by delta must give the logits of one prefilled there.
    with Model(model_path(arch), n_ctx=40, cache_type_k=cache, cache_type_v=cache) as m:
        tokens = [int(t) for t in rng.integers(0, m.n_vocab, 15)]
        nxt = int(rng.integers(0, m.n_vocab))
        end = start + len(tokens) + delta  # position of nxt after the shift
        m.prefill(tokens, seq_id=3, start=start)
        m.shift_sequence(3, start, None, delta)
        shifted = m.prefill([nxt], seq_id=3, start=end)
        m.remove_sequence(3)
        m.prefill(tokens, seq_id=3, start=start + delta)
        fresh = m.prefill([nxt], seq_id=3, start=end)
    assert nmse(shifted, fresh) < bound


def test_removing_the_tail_equals_never_having_it(model_path, rng):
    with Model(model_path("gemma3"), n_ctx=32) as m:
        tokens = [int(t) for t in rng.integers(0, m.n_vocab, 20)]
        m.prefill(tokens, seq_id=1)
        m.remove_sequence(1, 12)
        after = m.prefill(tokens[12:14], seq_id=1, start=12)
        fresh = m.eval_logits(tokens[:14])[-1:]
    np.testing.assert_array_equal(after, fresh)


def test_shift_context_keeps_first_and_halves_the_rest(model_path):
    with Model(model_path("llama"), n_ctx=16, cache_type_k="f32", cache_type_v="f32") as m:
        m.prefill(list(range(1, 17)), seq_id=0)
        assert m.shift_context(0, 16, n_keep=1) == 9  # 15 after the kept token: drop 7
        assert m.used_cells == 9
        with pytest.raises(ValueError, match="cannot shift"):
            m.shift_context(0, 1, n_keep=1)
        with pytest.raises(ValueError, match="below 0"):
            m.shift_sequence(0, 0, None, -1)


def test_generation_runs_past_the_context_with_shift(model_path):
    with Model(model_path("llama"), n_ctx=16) as m:
        prompt = m.detokenize([5, 6, 7, 8, 9, 10])
        plain, shifted = Generation(), Generation()
        list(m._run(m.tokenize(prompt), 40, None, {"temperature": 0}, plain, ignore_eos=True))
        pieces = list(m._run(m.tokenize(prompt), 40, None, {"temperature": 0}, shifted, context_shift=True,
                             ignore_eos=True))
        assert m.used_cells == 0  # the sequence is freed at the end
    # 6 or 7 prompt tokens (BOS) in 16 cells: without a shift generation stops at the context
    assert plain.finish_reason == "length" and len(plain.tokens) == 16 - plain.prompt_tokens + 1
    assert shifted.finish_reason == "length" and len(shifted.tokens) == 40
    assert shifted.tokens[:len(plain.tokens)] == plain.tokens  # identical until the first shift
    assert "".join(pieces) == m.detokenize(shifted.tokens)
