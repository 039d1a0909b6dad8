"""Layer split across devices, the planner's figures against what the devices
really hold, partition (several models on their own devices from threads).

The devices are CPU devices with their own thread pools and memory caps
(cpu:0, cpu:1, cpu:2): real devices that share nothing but the machine. The
same CPU kernels run on each, so a split model must give bit-identical logits
to the model on one device.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import hetinfer
from hetinfer import _core
from hetinfer.model import Model
from hetinfer.planner import layer_ranges
from random_models import ARCHS, model_factory

SPLIT_DEVICES = ["cpu:0", "cpu:1", "cpu:2"]
THREADS = {"cpu:0": 1, "cpu:1": 2, "cpu:2": 1}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return model_factory(tmp_path_factory.mktemp("split"), seed=11)


@pytest.fixture(scope="module")
def deep(tmp_path_factory):
    """A six-layer llama, so three devices get two layers each."""
    from hetinfer.testing import write_model

    return str(write_model(tmp_path_factory.mktemp("deep") / "llama6.gguf", arch="llama", quant="Q4_K_M", seed=5,
                           n_layer=6))


def tokens(rng, n_vocab: int, n: int) -> list[int]:
    return [int(t) for t in rng.integers(0, n_vocab, n)]


@pytest.mark.parametrize("arch", ARCHS)
def test_layer_split_gives_the_same_logits_as_one_device(models, rng, arch):
    path = models(arch, "Q4_K_M")
    with Model(path, n_ctx=64, n_batch=8) as one:
        prompt = tokens(rng, one.n_vocab, 20)
        want = one.eval_logits(prompt)
    with Model(path, devices=["cpu:0", "cpu:1"], n_threads={"cpu:1": 1}, n_ctx=64, n_batch=8) as split:
        assert [d.n_layers for d in split.plan.devices] == [split.config.n_layer // 2] * 2
        np.testing.assert_array_equal(split.eval_logits(prompt), want)  # bit for bit


@pytest.mark.parametrize("split,options", [("layer", {"micro_batches": 3}),
                                           ("row", {"tensor_split": [2, 1, 1]})], ids=["pipelined", "row"])
def test_split_models_give_wanted_rows_alone(deep, rng, split, options):
    """Only the last stage drops the rows no one wants, and a pipelined batch
    hands each micro-batch its own wanted rows (three micro-batches of four
    tokens: rows 1 and 2, none, row 11): the states equal one device's."""
    ids = np.array(tokens(rng, 64, 12), np.int32)
    seq, pos, wanted = np.zeros(12, np.int32), np.arange(12, dtype=np.int32), [1, 2, 11]
    with Model(deep, n_ctx=64, n_batch=16) as one:
        want = one.decode(ids, seq, pos)[wanted]
    with Model(deep, devices=SPLIT_DEVICES, split=split, n_threads=THREADS, n_ctx=64, n_batch=16, **options) as m:
        np.testing.assert_array_equal(m.decode(ids, seq, pos, wanted=wanted), want)


@pytest.mark.parametrize("arch", ARCHS)
def test_row_split_gives_the_same_logits_as_one_device(models, rng, arch):
    """Every matrix cut by rows 2 : 1 : 1 over three devices, slices gathered
    after each matmul: each output row is the same arithmetic, so bit for bit."""
    path = models(arch, "Q4_K_M")
    with Model(path, n_ctx=64, n_batch=8) as one:
        prompt = tokens(rng, one.n_vocab, 20)
        want = one.eval_logits(prompt)
    with Model(path, devices=SPLIT_DEVICES, split="row", tensor_split=[2, 1, 1], n_threads=THREADS, n_ctx=64,
               n_batch=8) as split:
        assert [d.row_share for d in split.plan.devices] == [0.5, 0.25, 0.25]
        np.testing.assert_array_equal(split.eval_logits(prompt), want)


def test_row_split_counts_a_send_and_a_gather_per_matmul_and_device(deep, rng):
    with Model(deep, devices=SPLIT_DEVICES, split="row", n_threads=THREADS, n_ctx=64, n_batch=16) as m:
        m.prefill(tokens(rng, m.n_vocab, 20))                      # 2 steps: 16 + 4 tokens
        helpers, matmuls = 2, 7 * m.config.n_layer
        # (send + gather) x helpers x matmuls of both steps, but the first step's
        # last feed-forward (3 matmuls): none of its tokens needs logits.
        assert m.transfers.count == 2 * helpers * (matmuls * 2 - 3)


def test_row_split_with_no_rows_on_the_main_device(deep, rng):
    with Model(deep, n_ctx=32) as one:
        prompt = tokens(rng, one.n_vocab, 10)
        want = one.eval_logits(prompt)
    with Model(deep, devices=["cpu:0", "cpu:1"], split="row", tensor_split=[0, 1], n_ctx=32) as m:
        assert m.plan.devices[0].kv > 0 and m.plan.devices[1].kv == 0  # attention stays on the main device
        np.testing.assert_array_equal(m.eval_logits(prompt), want)


def test_three_devices_count_one_transfer_per_boundary_per_step(deep, rng):
    with Model(deep, devices=SPLIT_DEVICES, n_threads=THREADS, n_ctx=64, n_batch=16, micro_batches=1) as m:
        assert [d.layers for d in m.plan.devices] == [(0, 2), (2, 4), (4, 6)]
        prompt = tokens(rng, m.n_vocab, 37)
        m.prefill(prompt)                              # 3 steps: 16 + 16 + 5 tokens
        for i in range(5):                             # 5 steps of one token
            m.decode(np.array([prompt[i]], np.int32), np.zeros(1, np.int32), np.array([37 + i], np.int32))
        boundaries, steps = 2, 3 + 5
        assert m.transfers.count == boundaries * steps
        assert m.transfers.bytes == boundaries * (37 + 5) * m.config.n_embd * 4


def test_pipelined_micro_batches_give_the_same_logits(deep, rng):
    """Four sequences, each prompt cut across micro-batches: stage k runs micro-batch
    i + 1 while stage k + 1 runs micro-batch i, and the result is bit for bit the same."""
    prompts = [tokens(rng, 256, 9) for _ in range(4)]
    ids = np.array(sum(prompts, []), np.int32)
    seq = np.repeat(np.arange(4, dtype=np.int32), 9)
    pos = np.tile(np.arange(9, dtype=np.int32), 4)
    with Model(deep, n_ctx=32, n_parallel=4, n_batch=36) as one:
        want = one.head(one.decode(ids, seq, pos))
    with Model(deep, devices=SPLIT_DEVICES, n_threads=THREADS, n_ctx=32, n_parallel=4, n_batch=36,
               micro_batches=5) as m:
        assert m.micro_batches == 5
        np.testing.assert_array_equal(m.head(m.decode(ids, seq, pos)), want)
        assert m.transfers.count == 2 * 5  # boundaries x micro-batches, one step
        # A step of one token per sequence: four micro-batches of one token (no more than tokens).
        np.testing.assert_array_equal(m.decode(ids[:4], np.arange(4, dtype=np.int32), np.full(4, 9, np.int32)).shape,
                                      (4, m.config.n_embd))
        assert m.transfers.count == 2 * 5 + 2 * 4


def test_pipelining_is_on_by_default_only_for_devices_with_their_own_threads(deep):
    with Model(deep, devices=["cpu:0", "cpu:1"], n_threads={"cpu:0": 1, "cpu:1": 1}, n_ctx=32) as m:
        assert m.micro_batches == 2
    with Model(deep, devices=["cpu:0", "cpu:1"], n_ctx=32) as m:  # both on the process-wide pool
        assert m.micro_batches == 1


def test_greedy_generation_is_identical_split_and_whole(deep):
    with Model(deep, n_ctx=64) as one:
        want = one.generate("hello", max_tokens=12, temperature=0)
    with Model(deep, devices=SPLIT_DEVICES, n_threads=THREADS, n_ctx=64) as split:
        assert split.generate("hello", max_tokens=12, temperature=0) == want


def test_context_shift_on_a_split_model_equals_one_device(deep, rng):
    prompt = tokens(rng, 256, 30)
    results = []
    for devices in (["cpu"], SPLIT_DEVICES):
        with Model(deep, devices=devices, n_ctx=64) as m:
            m.prefill(prompt)
            m.shift_context(0, n_past=30, n_keep=1)
            results.append(m.prefill([7, 8], start=16, all_logits=True))
    np.testing.assert_array_equal(results[1], results[0])


def test_tensor_split_sets_the_layer_ratio(deep):
    with Model(deep, devices=["cpu:0", "cpu:1"], tensor_split=[1, 2], n_ctx=32) as m:
        assert [d.layers for d in m.plan.devices] == [(0, 2), (2, 6)]
        assert m.plan.devices[0].embedding and not m.plan.devices[0].output
        assert m.plan.devices[1].output and not m.plan.devices[1].embedding


def test_a_device_with_no_share_holds_nothing(deep):
    with Model(deep, devices=["cpu:0", "cpu:1"], tensor_split=[0, 1], n_ctx=32) as m:
        assert m.plan.devices[0].total == 0
        assert m.memory()["cpu:0"]["total"]["high_water"] == 0
        assert m.plan.devices[1].layers == (0, 6)


@pytest.mark.parametrize("ratio,n_layer,want", [
    ([1, 1], 6, [(0, 3), (3, 6)]),
    ([3, 2], 5, [(0, 3), (3, 5)]),
    ([1, 0, 1], 4, [(0, 2), (2, 2), (2, 4)]),
    ([1, 1, 1], 2, [(0, 1), (1, 1), (1, 2)]),
    ([0.1, 100], 8, [(0, 0), (0, 8)]),
])
def test_layer_ranges(ratio, n_layer, want):
    got = layer_ranges(ratio, n_layer)
    assert got == want
    assert got[0][0] == 0 and got[-1][1] == n_layer


@pytest.mark.parametrize("split,cache", [("layer", "f16"), ("layer", "q8_0"), ("layer", "q4_0"), ("row", "f16")])
def test_planned_bytes_are_what_each_device_holds(deep, rng, split, cache):
    """After loading and filling every sequence's whole context: per device and
    kind, the high-water mark equals the plan (the issue allows 1%; the CPU
    device allocates exactly what the native size functions say)."""
    n_ctx, n_parallel = 48, 2
    with Model(deep, devices=SPLIT_DEVICES, split=split, n_threads=THREADS, n_ctx=n_ctx, n_parallel=n_parallel,
               n_batch=16, cache_type_k=cache, cache_type_v=cache) as m:
        for seq in range(n_parallel):
            m.prefill(tokens(rng, m.n_vocab, n_ctx), seq_id=seq)
        assert m.used_cells == n_ctx * n_parallel
        memory = m.memory()
        for d in m.plan.devices:
            got = memory[d.device]
            assert got["weights"]["high_water"] == d.weights
            assert got["kv"]["high_water"] == d.kv
            assert got["compute"]["high_water"] == d.compute
            assert got["total"]["high_water"] == d.total
    assert m.plan.devices[0].kv == m.plan.devices[0].n_layers * n_ctx * n_parallel * m.config.n_head_kv * (
        hetinfer.quants.row_bytes(cache.upper(), m.config.head_dim_k) +
        hetinfer.quants.row_bytes(cache.upper(), m.config.head_dim_v))


def test_tied_output_on_the_embedding_device_counts_once(gemma_path):
    plan = hetinfer.plan(gemma_path, devices=["cpu"], n_ctx=256)
    f = hetinfer.open_gguf(gemma_path)
    assert "output.weight" not in f.tensors  # Gemma ties its output to the embedding
    layers = sum(t.nbytes for name, t in f.tensors.items() if name.startswith("blk."))
    assert plan.devices[0].weights == layers + f.tensors["token_embd.weight"].nbytes + \
        f.tensors["output_norm.weight"].nbytes
    f.close()


def test_a_plan_that_does_not_fit_fails_before_allocating(deep):
    full = hetinfer.plan(deep, devices=["cpu"], n_ctx=4096)
    cap = full.devices[0].weights + full.devices[0].compute + full.devices[0].kv // 3
    with pytest.raises(hetinfer.PlanError) as err:
        Model(deep, devices=["cpu"], n_ctx=4096, max_memory={"cpu": cap})
    text = str(err.value)
    assert "NO" in text and "(max_memory)" in text
    assert "n_ctx=1024" in text                      # a quarter of the cache fits under a third of it
    assert "cache_type_k='q4_0'" in text             # q4_0 is 0.28 of f16
    assert not err.value.plan.fits
    # Each suggestion fits when planned again.
    assert hetinfer.plan(deep, devices=["cpu"], n_ctx=1024, max_memory={"cpu": cap}).fits


def test_suggests_a_ratio_that_fits(deep):
    args = {"devices": ["cpu:0", "cpu:1"], "n_ctx": 1024, "n_batch": 32}
    even = hetinfer.plan(deep, tensor_split=[1, 1], **args).devices
    caps = {"cpu:0": int(even[0].total * 1.35), "cpu:1": int(even[1].total * 0.75)}
    p = hetinfer.plan(deep, tensor_split=[1, 1], max_memory=caps, **args)
    assert not p.fits
    ratio = [t for t in p.suggestions() if t.startswith("another ratio")]
    assert ratio, p.suggestions()
    fitted = [int(v) for v in ratio[0].split("tensor_split=[")[1].rstrip("]").split(",")]
    assert fitted[0] > fitted[1]
    assert hetinfer.plan(deep, tensor_split=fitted, max_memory=caps, **args).fits


def test_devices_sharing_host_memory_are_checked_together(deep, monkeypatch):
    import hetinfer.devices as devices

    one = hetinfer.plan(deep, devices=["cpu"], n_ctx=512).devices[0]
    monkeypatch.setattr(devices, "host_memory", lambda: (one.total * 4, int(one.total * 0.9)))
    p = hetinfer.plan(deep, devices=["cpu:0", "cpu:1"], n_ctx=512)
    assert all(d.fits for d in p.devices)             # each half fits alone
    assert not p.fits and "share host memory" in p.problems[0]


def test_the_device_cap_is_enforced_natively():
    dev = _core.CpuDevice("capped", 1, 1000)
    table = (0, np.zeros(100 * 4 * 4, np.uint8), 100, 4)  # F32 (100, 4): 1600 bytes
    with pytest.raises(RuntimeError, match="capped: out of memory"):
        _core.Embedding(dev, table, 1.0, 1)
    assert dev.counters()["total"]["used"] == 0


@pytest.mark.parametrize("kwargs,error,match", [
    ({"devices": ["cpu:0", "cpu:1"], "split": "none"}, ValueError, "one device"),
    ({"devices": ["cpu"], "split": "diagonal"}, ValueError, "split must be one of"),
    ({"devices": ["cpu"], "split": "row"}, ValueError, "two or more devices"),
    ({"devices": ["cpu:0", "cpu:1"], "tensor_split": [1]}, ValueError, "1 values for 2 devices"),
    ({"devices": ["cpu:0", "cpu:1"], "tensor_split": [1, -1]}, ValueError, ">= 0"),
    ({"devices": ["cpu:0", "cpu:1"], "tensor_split": [0, 0]}, ValueError, "positive share"),
    ({"devices": ["cpu"], "max_memory": {"cpu:3": "1GiB"}}, ValueError, "not one of the devices"),
    ({"devices": ["cpu"], "max_memory": {"cpu": "lots"}}, ValueError, "6GiB"),
    ({"devices": ["cpu", "cpu"]}, hetinfer.DeviceError, "named twice"),
    ({"devices": ["gpu:0"]}, hetinfer.DeviceError, "unknown device"),
    ({"devices": ["cuda:99"]}, hetinfer.DeviceError, "not available|does not exist"),
    ({"devices": "cpu"}, TypeError, "list of device names"),
    ({"devices": ["cpu"], "n_threads": {"cpu:1": 2}}, ValueError, "not one of the devices"),
    ({"devices": ["cpu"], "micro_batches": 0}, ValueError, "micro_batches must be positive"),
])
def test_bad_arguments_get_clear_errors(deep, kwargs, error, match):
    with pytest.raises(error, match=match):
        Model(deep, n_ctx=32, **kwargs)


def test_plan_table_and_dict(deep):
    p = hetinfer.plan(deep, devices=["cpu:0", "cpu:1"], tensor_split=[1, 1], n_ctx=256, max_memory={"cpu:1": "1GiB"})
    table = p.to_table()
    assert "| cpu:0" in table and "| cpu:1" in table and "0-2 (3) +embd" in table and "3-5 (3) +out" in table
    d = p.to_dict()
    assert d["fits"] and d["devices"][1]["limit"] == min(2**30, p.devices[1].free)
    assert d["devices"][0]["total"] == p.devices[0].total


def test_the_default_ratio_follows_each_devices_limit(deep):
    free = hetinfer.plan(deep, devices=["cpu"]).devices[0].free
    p = hetinfer.plan(deep, devices=["cpu:0", "cpu:1"], n_ctx=256, max_memory={"cpu:1": free // 2})
    assert [d.n_layers for d in p.devices] == [4, 2]  # 6 layers in the ratio 1 : 1/2


def test_partition_two_models_on_their_own_devices_from_threads(models, deep, rng):
    """Two models, each on its own CPU device with its own threads, generating
    at the same time, give what each gives alone."""
    paths = [deep, models("qwen3", "Q8_0")]
    alone = []
    for path in paths:
        with Model(path, n_ctx=64) as m:
            alone.append(m.generate("partition", max_tokens=16, temperature=0, ignore_eos=True))
    loaded = [Model(path, devices=[dev], n_threads={dev: 1}, n_ctx=64) for path, dev in zip(paths, ["cpu:0", "cpu:1"])]
    results: list[str | None] = [None, None]
    barrier = threading.Barrier(2)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = loaded[i].generate("partition", max_tokens=16, temperature=0, ignore_eos=True)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for m in loaded:
        m.close()
    assert results == alone


def test_a_failing_micro_batch_raises_after_the_pipeline_drains(deep):
    with Model(deep, devices=["cpu:0", "cpu:1"], n_threads={"cpu:0": 1, "cpu:1": 1}, n_ctx=8,
               micro_batches=3) as m:
        with pytest.raises(RuntimeError, match="KV cache full"):  # 12 tokens, 8 cells: the third micro-batch fails
            m.decode(np.arange(12, dtype=np.int32), np.zeros(12, np.int32), np.arange(12, dtype=np.int32))
        m.remove_sequence(0)
        assert m.used_cells == 0 and all(s.used_cells == 0 for s in m._stages)
        m.prefill([1, 2, 3])  # and the model goes on
