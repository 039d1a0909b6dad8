"""Server parts in one process: options, models.toml, the engine under failure,
and the app before its models are loaded (no lifespan has run)."""

from __future__ import annotations

import asyncio
import queue

import httpx
import numpy as np
import pytest

pytest.importorskip("starlette")

from hetinfer.model import Model  # noqa: E402
from hetinfer.model.generate import Generation  # noqa: E402
from hetinfer.sampling import SamplingParams  # noqa: E402
from hetinfer.serve import build_app  # noqa: E402
from hetinfer.serve.engine import Engine, Job  # noqa: E402
from hetinfer.serve.options import ModelOptions, ServerOptions, parse_options  # noqa: E402
from hetinfer.testing import write_model  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return str(write_model(tmp_path_factory.mktemp("serve") / "tiny.gguf", arch="llama", quant="Q8_0", seed=2))


def test_flags_and_environment(monkeypatch, tmp_path):
    o = parse_options(["-m", "x.gguf", "-c", "1024", "-np", "2", "-ctk", "q8_0", "--context-shift",
                       "--api-key", "a, b"])
    m = o.models[0]
    assert (m.path, m.n_ctx, m.n_parallel, m.cache_type_k, m.context_shift) == ("x.gguf", 1024, 2, "q8_0", True)
    assert o.api_keys == ["a", "b"] and (o.host, o.port) == ("127.0.0.1", 8080)
    monkeypatch.setenv("HETINFER_CTX_SIZE", "333")
    monkeypatch.setenv("HETINFER_PORT", "9999")
    monkeypatch.setenv("HETINFER_CONTEXT_SHIFT", "1")
    o = parse_options([])
    assert (o.models[0].n_ctx, o.port, o.models[0].context_shift, o.models[0].path) == (333, 9999, True, None)
    assert parse_options(["-c", "77"]).models[0].n_ctx == 77  # a flag beats the environment
    with pytest.raises(ValueError, match="-np must be a positive"):
        parse_options(["-np", "0"])


def test_models_toml(tmp_path):
    cfg = tmp_path / "models.toml"
    cfg.write_text('''
[[model]]
path = "coder.gguf"
alias = ["coder", "qwen-coder"]
devices = ["cpu"]
ctx_size = 8192
parallel = 1

[[model]]
path = "family.gguf"
alias = "family"
parallel = 4
cache_type_k = "q8_0"

[[tier]]
name = "coder-precise"
model = "coder"
temperature = 0.1
max_tokens = 512
reasoning = false
''')
    o = parse_options(["--config", str(cfg)])
    assert [m.aliases for m in o.models] == [["coder", "qwen-coder"], ["family"]]
    assert (o.models[0].n_ctx, o.models[1].n_parallel, o.models[1].cache_type_k) == (8192, 4, "q8_0")
    t = o.tiers[0]
    assert (t.name, t.model, t.sampling, t.max_tokens, t.reasoning) == ("coder-precise", "coder",
                                                                        {"temperature": 0.1}, 512, False)
    for bad, match in [('[[model]]\nalias = "x"\n', "path is required"),
                       ('[[model]]\npath = "a"\nparallel = "4"\n', "parallel must be a int"),
                       ('[[model]]\npath = "a"\nwat = 1\n', "unknown key 'wat'"),
                       ('[[model]]\npath = "a"\n[[tier]]\nname = "t"\nmodel = "a"\ncolour = 1\n', "unknown keys"),
                       ("[[model]\n", "models.toml"), ("", "no \\[\\[model\\]\\] tables")]:
        cfg.write_text(bad)
        with pytest.raises(ValueError, match=match):
            parse_options(["--config", str(cfg)])
    with pytest.raises(ValueError, match="not both"):
        parse_options(["--config", str(cfg), "-m", "x.gguf"])


def test_duplicate_names_and_dangling_tiers(tiny):
    from hetinfer.serve.options import Tier
    with pytest.raises(ValueError, match="used twice"):
        build_app(ServerOptions(models=[ModelOptions(path=tiny, aliases=["a"]), ModelOptions(path=tiny,
                                                                                              aliases=["a"])]))
    with pytest.raises(ValueError, match="no model has"):
        build_app(ServerOptions(models=[ModelOptions(path=tiny)], tiers=[Tier(name="t", model="ghost")]))


def test_before_loading_health_is_503_and_requests_wait_for_it(tiny):
    app = build_app(ServerOptions(models=[ModelOptions(path=tiny, aliases=["tiny"])]))

    async def go():
        # ASGITransport runs no lifespan: the models never start loading.
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            health = await c.get("/health")
            chat = await c.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}]})
            return health, chat

    health, chat = asyncio.run(go())
    assert health.status_code == 503 and health.json()["status"] == "loading"
    assert health.json()["models"]["tiny"]["state"] == "loading"
    assert chat.status_code == 503 and "loading" in chat.json()["error"]["message"]


def _run_job(engine: Engine, prompt: list[int], max_tokens: int = 4) -> tuple[list, Job]:
    events: queue.Queue = queue.Queue()
    job = Job(prompt, SamplingParams(temperature=0), max_tokens, [], emit=events.put)
    engine.submit(job)
    seen = []
    while not seen or seen[-1].kind not in ("done", "error"):
        seen.append(events.get(timeout=30))
    return seen, job


def test_a_failing_step_fails_its_requests_and_the_engine_goes_on(tiny):
    model = Model(tiny, n_ctx=32, n_parallel=2)
    real_decode, calls = model.decode, {"n": 0}

    def flaky_decode(ids, seq, pos, wanted=None):  # the second step fails, as a device error would
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("device lost")
        return real_decode(ids, seq, pos, wanted)

    model.decode = flaky_decode
    engine = Engine(model, name="tiny")
    try:
        events, _ = _run_job(engine, [1, 5, 9])
        assert events[-1].kind == "error" and "device lost" in events[-1].text
        assert engine.last_error == "RuntimeError: device lost" and engine.n_running == 0
        events, job = _run_job(engine, [1, 5, 9])
        assert events[-1].kind == "done" and len(job.result.tokens) <= 4
        assert model.used_cells == 0
    finally:
        engine.close()


def test_engine_output_equals_model_generate(tiny):
    model = Model(tiny, n_ctx=48, n_parallel=3, n_batch=4)  # prompts read 4 tokens a step, beside decodes
    prompts = [[1, 7, 8, 9, 10, 11, 12], [1, 3], [1, 20, 21, 22, 23, 24, 25, 26, 27, 28]]
    expected = []
    for p in prompts:
        text = "".join(model._run(p, 6, None, {"temperature": 0}, Generation(), ignore_eos=True))
        expected.append(text)
    engine = Engine(model, name="tiny")
    try:
        queues, jobs = [], []
        bias = {t: -np.inf for t in model.tokenizer.eog_ids}
        for p in prompts:
            q: queue.Queue = queue.Queue()
            jobs.append(Job(p, SamplingParams(temperature=0, logit_bias=bias), 6, [], emit=q.put))
            queues.append(q)
            engine.submit(jobs[-1])
        for q, want in zip(queues, expected):
            got = []
            while not got or got[-1].kind != "done":
                got.append(q.get(timeout=30))
            assert "".join(e.text for e in got) == want
    finally:
        engine.close()


def test_split_flags_and_environment(monkeypatch):
    m = parse_options(["-dev", "cpu:0,cpu:1", "-sm", "layer", "-ts", "3,1", "--max-memory", "cpu:0=1GiB"]).models[0]
    assert (m.devices, m.split, m.tensor_split, m.max_memory) == (["cpu:0", "cpu:1"], "layer", [3.0, 1.0],
                                                                 {"cpu:0": "1GiB"})
    assert parse_options([]).models[0].devices is None  # the best available device, chosen at load
    monkeypatch.setenv("HETINFER_SPLIT_MODE", "none")
    monkeypatch.setenv("HETINFER_TENSOR_SPLIT", "2/1")
    m = parse_options([]).models[0]
    assert (m.split, m.tensor_split) == ("none", [2.0, 1.0])
    monkeypatch.setenv("HETINFER_SPLIT_MODE", "diagonal")
    with pytest.raises(ValueError, match="split mode must be one of"):
        parse_options([])
    monkeypatch.delenv("HETINFER_SPLIT_MODE")
    with pytest.raises(ValueError, match="numbers such as 3,2"):
        parse_options(["-ts", "a,b"])
    with pytest.raises(ValueError, match="DEVICE=SIZE"):
        parse_options(["--max-memory", "6GiB"])


def test_models_toml_split_keys(tmp_path):
    cfg = tmp_path / "models.toml"
    cfg.write_text('[[model]]\npath = "big.gguf"\ndevices = ["cpu:0", "cpu:1"]\nsplit = "layer"\n'
                   'tensor_split = [3, 2]\nmax_memory = { "cpu:1" = "2GiB" }\n')
    m = parse_options(["--config", str(cfg)]).models[0]
    assert (m.devices, m.split, m.tensor_split, m.max_memory) == (["cpu:0", "cpu:1"], "layer", [3, 2],
                                                                 {"cpu:1": "2GiB"})


def test_a_served_model_split_over_two_devices(tiny):
    from hetinfer.serve.metrics import ServerMetrics
    from hetinfer.serve.registry import ServedModel

    one = ServedModel(ModelOptions(path=tiny, n_ctx=32, n_parallel=2), tiny, ServerMetrics())
    split = ServedModel(ModelOptions(path=tiny, devices=["cpu:0", "cpu:1"], tensor_split=[1, 1], n_ctx=32,
                                     n_parallel=2), tiny, ServerMetrics())
    for m in (one, split):
        m.load()
    try:
        assert split.state == "ready" and split.device == "cpu:0,cpu:1"
        plan = split.props()["plan"]
        assert [d["device"] for d in plan["devices"]] == ["cpu:0", "cpu:1"] and plan["fits"]
        assert one.device == "cpu" and len(one.props()["plan"]["devices"]) == 1
        outputs = [_run_job(m.engine, [1, 5, 9, 13], max_tokens=6)[1].result.tokens for m in (one, split)]
        assert outputs[0] == outputs[1]
        assert split.engine.model.transfers.count > 0
    finally:
        for m in (one, split):
            m.engine.close()


def test_a_model_that_does_not_fit_fails_with_the_plan(tiny):
    from hetinfer.serve.metrics import ServerMetrics
    from hetinfer.serve.registry import ServedModel

    m = ServedModel(ModelOptions(path=tiny, max_memory={"cpu": "64KiB"}), tiny, ServerMetrics())
    m.load()
    assert m.state == "failed" and "does not fit" in m.error and "(max_memory)" in m.error
    assert m.health()["state"] == "failed"
