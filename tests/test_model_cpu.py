"""Whole models on the CPU.

Logits are compared by NMSE = ||y - ref||^2 / ||ref||^2 against the float64
numpy forward pass in model_reference.py:
- F32 weights (float kernels, f32 cache): < 1e-8.
- Q8_0 / Q4_K_M weights (activations rounded to 8 bits before every integer
  matmul, f16 cache): < 1e-3; the reference uses the same dequantised weights.
- q8_0 / q4_0 KV cache against f16: < 3e-3 / < 0.1 (measured over six seeds
  on these random models: at most 8e-4 / 0.037; q8_0/q4_0 K also rounds the
  queries to 8 bits). A wrong cache layout gives ~1.
"""

from __future__ import annotations

import numpy as np
import pytest

from hetinfer.model import Model
from model_reference import reference_logits
from random_models import ARCHS, model_factory, nmse

@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_factory(tmp_path_factory.mktemp("models"), seed=3)


def prompt(rng, n_vocab: int, n: int = 12) -> list[int]:
    return [int(t) for t in rng.integers(0, n_vocab, n)]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("quant,cache,bound", [("F32", "f32", 1e-8), ("Q8_0", "f16", 1e-3), ("Q4_K_M", "f16", 1e-3)])
def test_logits_match_float64_reference(models, rng, arch, quant, cache, bound):
    path = models(arch, quant)
    with Model(path, n_ctx=64, cache_type_k=cache, cache_type_v=cache) as m:
        tokens = prompt(rng, m.n_vocab)
        got = m.eval_logits(tokens)
    assert nmse(got, reference_logits(path, tokens)) < bound


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cache,bound", [("q8_0", 3e-3), ("q4_0", 0.1)])
def test_quantised_kv_cache_close_to_f16(models, rng, arch, cache, bound):
    path = models(arch, "Q8_0")
    with Model(path, n_ctx=64) as m:
        tokens = prompt(rng, m.n_vocab)
        f16 = m.eval_logits(tokens)
    with Model(path, n_ctx=64, cache_type_k=cache, cache_type_v=cache) as m:
        assert nmse(m.eval_logits(tokens), f16) < bound


@pytest.mark.parametrize("arch", ARCHS)
def test_token_by_token_equals_prefill(models, rng, arch):
    with Model(models(arch, "Q8_0"), n_ctx=64, n_batch=5) as m:  # prefill in chunks of 5
        tokens = prompt(rng, m.n_vocab)
        prefill = m.eval_logits(tokens)
        steps = [m.head(m.decode(np.array([t], np.int32), np.array([7], np.int32), np.array([i], np.int32)))[0]
                 for i, t in enumerate(tokens)]
    np.testing.assert_array_equal(np.stack(steps), prefill)  # bit for bit, as batching


@pytest.mark.parametrize("arch", ARCHS)
def test_wanted_rows_equal_the_whole_batch_bit_for_bit(models, rng, arch):
    """decode(wanted=rows) runs the last layer's feed-forward for those rows
    alone: their states are the whole batch's bit for bit (every matmul row is
    computed alone), and every token's keys and values are cached as before,
    so the next step is unchanged too, even when no row is wanted."""
    with Model(models(arch, "Q8_0"), n_ctx=64) as m:
        ids = np.array(prompt(rng, m.n_vocab, 10), np.int32)
        seq, pos = np.zeros(10, np.int32), np.arange(10, dtype=np.int32)
        nxt = (np.array([ids[0]], np.int32), np.zeros(1, np.int32), np.array([10], np.int32))
        whole = m.decode(ids, seq, pos)
        after_whole = m.decode(*nxt)
        for wanted in ([2, 7, 9], [0], []):
            m.remove_sequence(0)
            got = m.decode(ids, seq, pos, wanted=wanted)
            assert got.shape == (len(wanted), m.config.n_embd)
            np.testing.assert_array_equal(got, whole[wanted])
            np.testing.assert_array_equal(m.decode(*nxt), after_whole)
        for bad in ([3, 3], [7, 2], [10], [-1]):
            with pytest.raises(ValueError, match="strictly increasing row indices of the batch of 10"):
                m.decode(ids, seq, pos, wanted=bad)
            with pytest.raises(ValueError, match="strictly increasing indices into the batch of 10"):  # the stage's own check
                m._stages[-1].forward(m.embed(ids), seq, pos, np.array(bad, np.int32))
        with pytest.raises(TypeError, match="int row indices"):
            m.decode(ids, seq, pos, wanted=[3.5])
        assert m.used_cells == 11  # no refused step took a cell


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_sequences_equal_each_alone_bit_for_bit(models, rng, arch):
    # Attention visits a token's cells in position order and every matmul row
    # is computed alone, so batching must not change a single bit (the server
    # relies on this: greedy answers do not depend on the other requests).
    with Model(models(arch, "Q8_0"), n_ctx=64, n_parallel=3) as m:
        a, b = prompt(rng, m.n_vocab, 9), prompt(rng, m.n_vocab, 6)
        alone = [m.eval_logits(a), m.eval_logits(b)]
        # Fragment the cache: a third sequence's cells, half of them freed, lie between theirs.
        m.prefill(prompt(rng, m.n_vocab, 10), seq_id=5)
        m.remove_sequence(5, 0, 5)
        # Both sequences in one batch, interleaved, as a server step would run them.
        order = [(0, i) for i in range(len(a))] + [(1, i) for i in range(len(b))]
        order.sort(key=lambda sp: (sp[1], sp[0]))
        ids = np.array([(a, b)[s][i] for s, i in order], np.int32)
        seq = np.array([s + 1 for s, _ in order], np.int32)
        pos = np.array([i for _, i in order], np.int32)
        batched = m.head(m.decode(ids, seq, pos))
    for s, ref in enumerate(alone):
        rows = [k for k, (sq, _) in enumerate(order) if sq == s]
        np.testing.assert_array_equal(batched[rows], ref)


def test_bad_input(models):
    with Model(models("llama", "Q8_0"), n_ctx=8) as m:
        with pytest.raises(ValueError, match="exceed the context of 8"):
            m.eval_logits(list(range(9)))
        with pytest.raises(ValueError, match="outside the vocabulary"):
            m.eval_logits([1, m.n_vocab])
        with pytest.raises(TypeError, match="tokens must be"):
            m.eval_logits(["a"])
    with pytest.raises(ValueError, match="cache_type_k must be one of"):
        Model(models("llama", "Q8_0"), cache_type_k="q5_1")
    with pytest.raises(TypeError, match="n_ctx must be an int"):
        Model(models("llama", "Q8_0"), n_ctx="4096")


def test_unsupported_architecture(tmp_path):
    from gguf import GGUFWriter

    path = str(tmp_path / "mamba.gguf")
    w = GGUFWriter(path, "mamba")
    w.add_tensor("token_embd.weight", np.zeros((4, 32), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(ValueError, match="unsupported architecture 'mamba'"):
        Model(path)


def test_loading_progress_bar(models, monkeypatch, capsys):
    import hetinfer.model.weights as weights

    monkeypatch.setattr(weights, "PREFETCH_MIN_BYTES", 1)  # show it for a tiny model too
    with Model(models("llama", "Q8_0"), n_ctx=16, progress=True):
        pass
    assert "loading" in capsys.readouterr().err
