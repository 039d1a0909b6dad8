"""Whole models on an accelerator backend, alone and beside the CPU in a layer
or row split: sycl:0 (in CI the OpenCL CPU device of PyPI's intel-opencl-rt)
and cuda:0 (skipped with the reason when there is no NVIDIA GPU), and one
model over cuda:0 and cuda:1 (skipped below two GPUs).

The device kernels round activations to the same 8-bit blocks as the CPU and
do the same integer dot products; what differs is the order of float sums
(work-group reductions, float instead of double in RMSNorm). Most tokens'
logits come out equal to ~1e-13, but now and then a tiny difference moves an
activation across a rounding boundary of the 8-bit blocks, and that token's
logits differ by a few 1e-4 NMSE (sum of squared differences over sum of
squares). The CPU's own two kernel paths (scalar and AVX2) differ the same
way: measured on these random models (2026-11-23) scalar vs AVX2 up to
3.4e-4, SYCL vs AVX2 up to 3.3e-4. Bound: NMSE < 3e-3 over a prompt; a wrong
kernel gives ~1. Greedy tokens of the real Gemma 3 270M must be equal.

On CUDA a step of each size (up to 16 tokens) runs as it is the first time,
is recorded as a graph the second and replayed after: prompts of 28 tokens
go in batches of 8, 8, 8 and 4, and a test decodes single tokens, so the
comparisons cover replayed steps too.
"""

from __future__ import annotations

import numpy as np
import pytest

import hetinfer
from hetinfer.model import Model
from hetinfer.testing.quant_mix import PLAIN_TYPES
from random_models import ARCHS, model_factory, nmse

BOUND = 3e-3


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_factory(tmp_path_factory.mktemp("device-models"), seed=23)


@pytest.fixture(params=["sycl0", "cuda0"], ids=["sycl", "cuda"])
def accel(request) -> str:
    """sycl:0 or cuda:0 (see conftest's sycl0 and cuda0 for when each is skipped or fails)."""
    return request.getfixturevalue(request.param)


def prompt(rng, n_vocab: int, n: int = 28) -> list[int]:
    return [int(t) for t in rng.integers(0, n_vocab, n)]


def cpu_logits(path: str, ids: list[int], **kw) -> np.ndarray:
    with Model(path, n_ctx=64, n_batch=8, **kw) as m:
        return m.eval_logits(ids)


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("cache", ["f16", "q8_0"])
def test_every_architecture_matches_the_cpu(models, rng, accel, arch, cache):
    path = models(arch, "Q4_K_M")
    with Model(path, devices=[accel], n_ctx=64, n_batch=8, cache_type_k=cache, cache_type_v=cache) as m:
        ids = prompt(rng, m.n_vocab)
        got = m.eval_logits(ids)
    assert nmse(got, cpu_logits(path, ids, cache_type_k=cache, cache_type_v=cache)) < BOUND


@pytest.mark.parametrize("quant", PLAIN_TYPES)
def test_every_weight_type_matches_the_cpu(models, rng, accel, quant):
    """Every matrix of the model in one type (the 13 the kernels support)."""
    path = models("llama", quant)
    with Model(path, devices=[accel], n_ctx=64, n_batch=8) as m:
        ids = prompt(rng, m.n_vocab)
        got = m.eval_logits(ids)
    assert nmse(got, cpu_logits(path, ids)) < BOUND


@pytest.mark.parametrize("split", ["layer", "row"])
def test_cpu_and_accelerator_split_matches_one_device(models, rng, accel, split):
    """Unlike devices: the native CPU backend and another backend's device."""
    path = models("qwen3", "Q4_K_M")
    with Model(path, devices=["cpu", accel], split=split, tensor_split=[1, 1], n_ctx=64, n_batch=8) as m:
        ids = prompt(rng, m.n_vocab)
        got = m.eval_logits(ids)
        steps = -(-len(ids) // 8)
        if split == "layer":
            assert m.transfers.count == steps * m.micro_batches  # one boundary, crossed by each micro-batch
        else:
            assert m.transfers.count == 2 * 7 * m.config.n_layer * steps  # send + gather per matmul
    assert nmse(got, cpu_logits(path, ids)) < BOUND


@pytest.mark.parametrize("split", ["layer", "row"])
def test_two_cuda_devices_split_matches_the_cpu(models, rng, two_cuda, split, capfd):
    """One model over two GPUs, by layers (each stage's steps recorded on its
    own GPU, from its own thread) or by rows (slices through the host; not
    recorded)."""
    path = models("qwen3", "Q4_K_M")
    with Model(path, devices=two_cuda, split=split, tensor_split=[1, 1], n_ctx=64, n_batch=8) as m:
        ids = prompt(rng, m.n_vocab)
        got = np.concatenate([m.prefill(ids[:24], all_logits=True),
                              *(m.prefill([t], start=24 + i) for i, t in enumerate(ids[24:]))])
    assert "unrecorded" not in capfd.readouterr().err  # no capture failed (CudaDevice::record says so)
    assert nmse(got, cpu_logits(path, ids)) < BOUND


def test_planned_bytes_are_what_the_device_holds(models, rng, accel):
    path = models("gemma3", "Q4_K_M")
    with Model(path, devices=[accel], n_ctx=32, n_parallel=2, n_batch=8) as m:
        for seq in range(2):
            m.prefill(prompt(rng, m.n_vocab, 32), seq_id=seq)
        planned = m.plan.devices[0]
        held = m.memory()[accel]
        assert (held["weights"]["high_water"], held["kv"]["high_water"], held["compute"]["high_water"]) == \
            (planned.weights, planned.kv, planned.compute)


def test_decode_steps_match_the_cpu(models, rng, accel):
    """Six single-token steps after a prompt (on CUDA: run, recorded, replayed)."""
    path = models("llama", "Q4_K_M")
    ids = prompt(rng, 500, 16)
    got = []
    for devices in (["cpu"], [accel]):
        with Model(path, devices=devices, n_ctx=32, n_batch=8) as m:
            m.prefill(ids[:10])
            got.append(np.concatenate([m.prefill([t], start=10 + i) for i, t in enumerate(ids[10:])]))
    assert got[0].shape == (6, 512)
    assert nmse(got[1], got[0]) < BOUND


def test_parallel_decode_steps_match_the_cpu(models, rng, accel):
    """Twelve sequences decoding side by side: steps of 12 tokens (on CUDA:
    the matvec in two passes; the step run, recorded, then replayed twice)."""
    path = models("llama", "Q4_K_M")
    prompts = [prompt(rng, 500, 3) for _ in range(12)]
    steps = np.array([prompt(rng, 500, 12) for _ in range(4)], np.int32)  # (4 steps, 12 sequences)
    seq = np.arange(12, dtype=np.int32)
    got = []
    for devices in (["cpu"], [accel]):
        with Model(path, devices=devices, n_ctx=128, n_parallel=12, n_batch=16) as m:
            for s, p in enumerate(prompts):
                m.prefill(p, seq_id=s)
            got.append(np.concatenate([m.head(m.decode(ids, seq, np.full(12, 3 + i, np.int32)))
                                       for i, ids in enumerate(steps)]))
    assert got[0].shape == (48, 512)
    assert nmse(got[1], got[0]) < BOUND


def test_wanted_rows_match_the_whole_batch(models, rng, accel):
    """A step that wants a few rows, or none (its ops still queued when the
    stage returns no rows: the device must have finished them), keeps every
    token's keys and values: the next step is the whole batch's next step. The
    whole batch of 20 takes the tiled matmul, the two rows the matvec, so
    within the bound, not bit for bit."""
    path = models("llama", "Q4_K_M")
    ids = np.array(prompt(rng, 500, 20), np.int32)
    seq, pos = np.zeros(20, np.int32), np.arange(20, dtype=np.int32)
    nxt = (np.array([7], np.int32), np.zeros(1, np.int32), np.array([20], np.int32))
    with Model(path, devices=[accel], n_ctx=32, n_batch=32) as m:
        whole = m.decode(ids, seq, pos)
        after = m.decode(*nxt)
        for wanted in ([3, 19], []):
            m.remove_sequence(0)
            got = m.decode(ids, seq, pos, wanted=wanted)
            assert got.shape == (len(wanted), m.config.n_embd)
            if wanted:
                assert nmse(got, whole[wanted]) < BOUND
            assert nmse(m.decode(*nxt), after) < BOUND


@pytest.mark.parametrize("cache_type", ["f16", "q8_0"])  # q8_0: the shift reads quantised keys (get_rows of a cache)
def test_context_shift_matches_the_cpu(models, rng, accel, cache_type):
    path = models("llama", "Q4_K_M")
    ids = prompt(rng, 500, 30)
    got = []
    for devices in (["cpu"], [accel]):
        with Model(path, devices=devices, n_ctx=32, n_batch=8, cache_type_k=cache_type) as m:
            m.prefill(ids[:30])
            n_past = m.shift_context(0, 30, n_keep=4)
            got.append(m.prefill(ids[:3], start=n_past))
    assert nmse(got[1], got[0]) < BOUND


def test_gemma_greedy_tokens_equal_the_cpus(gemma_path, accel):
    """Greedy tokens are equal until the first near-tie of the top two logits.
    Measured over 5 prompts x 32 tokens (2026-11-23): SYCL and the CPU's AVX2
    path agree for 18, 4, 32, 2 and 32 tokens; the CPU's own scalar and AVX2
    paths for 15, 4, 32, 32 and 32 (each parting at a top-two gap under 0.1
    logit). This prompt's first 12 tokens have no such tie for the kernels as
    they are; the margin is thin: the scalar and AVX2 paths' logits differ by
    up to 1.3 (max over the vocabulary), and a SYCL matvec summing each row in
    another order (tried 2026-12-03, bench/RESULTS.md) parted at token 12,
    where the CPU's top-two gap is 0.17. A kernel change that fails only this
    test wants that gap checked before anything else."""
    text = {}
    for device in ("cpu", accel):
        with hetinfer.load(gemma_path, devices=[device], n_ctx=256) as m:
            text[device] = m.generate("The capital of France is", max_tokens=12, temperature=0)
    assert text[accel] == text["cpu"]
