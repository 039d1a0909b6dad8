"""The real server on loopback, driven by the official openai client and raw httpx.

Greedy (temperature 0) answers are compared with the in-process Model: the
server batches slots together, and a batch of rows gives each row the logits
it gets alone (tests/test_model_cpu.py checks that within 1e-4).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

openai = pytest.importorskip("openai")

from hetinfer.testing.server import ServerProcess  # noqa: E402

ALIAS = "gemma"
PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time", "1, 2, 3, 4,",
           "The best way to learn", "Water boils at", "My favourite colour is", "import numpy as np\n"]


@pytest.fixture(scope="module")
def server(gemma_path):
    s = ServerProcess("-m", gemma_path, "--alias", ALIAS, "-np", "4", "-c", "256", "-b", "64")
    yield s
    s.close()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def local(gemma_path):
    import hetinfer
    with hetinfer.load(gemma_path, n_ctx=256) as m:
        yield m


def test_models_lists_the_alias(client):
    models = client.models.list()
    assert [m.id for m in models.data] == [ALIAS]


def test_chat_equals_the_library(client, local):
    messages = [{"role": "user", "content": "Name a colour."}]
    r = client.chat.completions.create(model=ALIAS, messages=messages, max_tokens=12, temperature=0)
    expected = local.chat(messages, max_tokens=12, temperature=0)
    assert r.choices[0].message.content == expected["choices"][0]["message"]["content"]
    assert r.choices[0].finish_reason == expected["choices"][0]["finish_reason"]
    assert r.usage.prompt_tokens == expected["usage"]["prompt_tokens"]
    assert r.usage.completion_tokens == expected["usage"]["completion_tokens"]


def test_chat_stream_equals_whole(client):
    kw = dict(model=ALIAS, messages=[{"role": "user", "content": "Count to five."}], max_tokens=16, temperature=0)
    whole = client.chat.completions.create(**kw)
    chunks = list(client.chat.completions.create(**kw, stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_completions_whole_stream_and_logprobs(client, local):
    whole = client.completions.create(model=ALIAS, prompt=PROMPTS[0], max_tokens=8, temperature=0, logprobs=3)
    assert whole.choices[0].text == local.generate(PROMPTS[0], max_tokens=8, temperature=0)
    lp = whole.choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) == whole.usage.completion_tokens
    assert all(len(t) == 3 and max(t.values()) >= p - 1e-6 for t, p in zip(lp.top_logprobs, lp.token_logprobs))
    streamed = client.completions.create(model=ALIAS, prompt=PROMPTS[0], max_tokens=8, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in streamed) == whole.choices[0].text


def test_stop_strings_and_seed(client):
    a = client.completions.create(model=ALIAS, prompt="1, 2, 3,", max_tokens=30, temperature=0, stop=[" 6"])
    assert a.choices[0].finish_reason == "stop" and " 6" not in a.choices[0].text
    kw = dict(model=ALIAS, prompt="Once upon a time", max_tokens=12, temperature=1.0, seed=7)
    assert client.completions.create(**kw).choices[0].text == client.completions.create(**kw).choices[0].text


def test_eight_concurrent_clients_equal_sequential(client):
    def ask(p):
        return client.completions.create(model=ALIAS, prompt=p, max_tokens=10, temperature=0).choices[0].text

    sequential = [ask(p) for p in PROMPTS]
    concurrent: dict[int, str] = {}
    threads = [threading.Thread(target=lambda i=i: concurrent.__setitem__(i, ask(PROMPTS[i]))) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [concurrent[i] for i in range(8)] == sequential


def _post(server, path, body, **kw):
    content = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return httpx.post(server.url + path, content=content, headers={"content-type": "application/json"},
                      timeout=60, **kw)


@pytest.mark.parametrize("body,status,param", [
    (b"{not json", 400, None),
    (b"[1, 2]", 400, None),
    ({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}, 400, "temperature"),
    ({"messages": [{"role": "user", "content": "hi"}], "top_p": 2}, 400, "top_p"),
    ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}, 400, "max_tokens"),
    ({"messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "n"),
    ({"messages": [{"role": "user", "content": "hi"}], "stop": [1]}, 400, "stop"),
    ({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"x": 1}}, 400, "logit_bias"),
    ({"messages": [{"role": "user", "content": "hi"}], "logit_bias": {"999999": 1}}, 400, "logit_bias"),
    ({"messages": []}, 400, "messages"),
    ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages[0].content[0]"),
    ({"messages": [{"role": "user", "content": "hi"}], "model": "nope"}, 404, "model"),
])
def test_bad_chat_requests_get_openai_errors(server, body, status, param):
    r = _post(server, "/v1/chat/completions", body)
    assert r.status_code == status
    err = r.json()["error"]
    assert err["message"] and err["type"] and err["param"] == param


def test_prompt_over_the_context(server):
    r = _post(server, "/v1/completions", {"prompt": "word " * 400, "max_tokens": 1})
    assert r.status_code == 400 and r.json()["error"]["code"] == "context_length_exceeded"
    r = _post(server, "/v1/completions", {"prompt": [5, 10_000_000]})
    assert r.status_code == 400 and "vocabulary" in r.json()["error"]["message"]
    r = _post(server, "/v1/completions", {"prompt": [5, 10 ** 30]})  # past int64: still a 400, not a 500
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt"


def test_wrong_method_and_path_are_json_errors(server):
    assert httpx.get(server.url + "/v1/chat/completions").status_code == 405
    r = httpx.get(server.url + "/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


def test_information_endpoints(server):
    health = httpx.get(server.url + "/health").json()
    assert health["status"] == "ok" and health["models"][ALIAS]["state"] == "ready"
    props = httpx.get(server.url + "/props").json()
    assert props["n_ctx"] == 256 and props["n_ctx_is_per_slot"] and props["total_slots"] == 4
    slots = httpx.get(server.url + "/slots").json()[ALIAS]
    assert len(slots) == 4 and {s["state"] for s in slots} <= {"idle", "processing"}
    ids = _post(server, "/tokenize", {"content": "Hello world", "add_special": False}).json()["tokens"]
    assert _post(server, "/detokenize", {"tokens": ids}).json()["content"] == "Hello world"
    metrics = httpx.get(server.url + "/metrics").text
    for name in ("hetinfer_requests_running", "hetinfer_requests_waiting", "hetinfer_prompt_tokens_total",
                 "hetinfer_generated_tokens_total", "hetinfer_time_to_first_token_seconds_bucket",
                 "hetinfer_inter_token_seconds_bucket", "hetinfer_kv_cache_usage_ratio"):
        assert f'{name}{{device="cpu"' in metrics or f"{name}{{" in metrics, name


def _wait_idle(server, timeout=30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s["state"] == "idle" for s in httpx.get(server.url + "/slots").json()[ALIAS]):
            return True
        time.sleep(0.1)
    return False


def test_a_client_that_disconnects_frees_its_slot(server):
    body = {"prompt": "Once upon a time", "max_tokens": 200, "ignore_eos": True, "stream": True}
    with httpx.stream("POST", server.url + "/v1/completions", json=body, timeout=60) as r:
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith("data:"))
        busy = [s for s in httpx.get(server.url + "/slots").json()[ALIAS] if s["state"] == "processing"]
        assert busy
    assert _wait_idle(server)  # well before 200 tokens would have been generated
    whole = {"prompt": "Once upon a time", "max_tokens": 200, "ignore_eos": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(server.url + "/v1/completions", json=whole, timeout=0.5)
    assert _wait_idle(server)


def _until(condition, timeout=60.0) -> bool:
    """Polls condition() until it holds (True) or timeout seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _requests_waiting(server) -> float:
    """The hetinfer_requests_waiting gauge of /metrics (one model served)."""
    for line in httpx.get(server.url + "/metrics").text.splitlines():
        if line.startswith("hetinfer_requests_waiting{"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_queue_overflow_gets_503_and_nothing_accepted_is_lost(gemma_path):
    s = ServerProcess("-m", gemma_path, "-np", "1", "--queue-size", "1", "-c", "256")
    try:
        # Long enough that the first still holds the slot while the others arrive, on a fast machine too (~60
        # tokens/s here). Each step waits for the server's own account, not a fixed time: a loaded machine may
        # take seconds to tokenise a request.
        long = {"prompt": "Once upon a time", "max_tokens": 200, "ignore_eos": True}
        results = {}
        first = threading.Thread(target=lambda: results.__setitem__(0, _post(s, "/v1/completions", long)))
        first.start()
        assert _until(lambda: _requests_waiting(s) == 0 and any(  # the only slot busy, nothing queued
            slot["state"] == "processing" for slots in httpx.get(s.url + "/slots").json().values() for slot in slots))
        second = threading.Thread(target=lambda: results.__setitem__(1, _post(s, "/v1/completions", long)))
        second.start()
        assert _until(lambda: _requests_waiting(s) == 1)  # the second fills the queue
        third = _post(s, "/v1/completions", long)
        assert third.status_code == 503 and third.headers["retry-after"]
        first.join()
        second.join()
        assert [results[i].status_code for i in (0, 1)] == [200, 200]
        assert all(results[i].json()["usage"]["completion_tokens"] == 200 for i in (0, 1))
    finally:
        s.close()


def test_api_keys(gemma_path, tmp_path):
    key_file = tmp_path / "keys"
    key_file.write_text("# one per line\nfile-key\n")
    s = ServerProcess("-m", gemma_path, "-np", "1", "-c", "128", "--api-key", "k1,k2",
                      "--api-key-file", str(key_file))
    try:
        assert httpx.get(s.url + "/health").status_code == 200  # no key needed
        assert httpx.get(s.url + "/v1/models").status_code == 401
        r = httpx.get(s.url + "/v1/models", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        for key in ("k1", "k2", "file-key"):
            assert httpx.get(s.url + "/v1/models", headers={"Authorization": f"Bearer {key}"}).status_code == 200
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="k2", max_retries=0)
        name = c.models.list().data[0].id
        assert c.completions.create(model=name, prompt="Hi", max_tokens=2).usage.completion_tokens <= 2
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=s.url + "/v1", api_key="bad", max_retries=0).models.list()
    finally:
        s.close()


def test_several_models_and_tiers_from_models_toml(gemma_path, tmp_path):
    from hetinfer.testing import write_model
    tiny = write_model(tmp_path / "tiny.gguf", arch="llama", quant="Q8_0", seed=1)
    cfg = tmp_path / "models.toml"
    cfg.write_text(f"""
[[model]]
path = "{gemma_path}"
alias = ["gemma"]
parallel = 2
ctx_size = 256

[[model]]
path = "{tiny}"
alias = "tiny"
parallel = 1
ctx_size = 64

[[tier]]
name = "gemma-short"
model = "gemma"
temperature = 0.0
max_tokens = 3
""")
    s = ServerProcess("--config", str(cfg))
    try:
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="unused", max_retries=0)
        assert sorted(m.id for m in c.models.list().data) == ["gemma", "gemma-short", "tiny"]
        short = c.completions.create(model="gemma-short", prompt="Once upon a time")
        assert short.usage.completion_tokens == 3 and short.model == "gemma-short"
        greedy = c.completions.create(model="gemma", prompt="Once upon a time", max_tokens=3, temperature=0)
        assert short.choices[0].text == greedy.choices[0].text
        assert c.completions.create(model="tiny", prompt=[1, 2, 3], max_tokens=2).usage.completion_tokens <= 2
        r = _post(s, "/v1/completions", {"prompt": "hi"})
        assert r.status_code == 400 and r.json()["error"]["param"] == "model"
        health = httpx.get(s.url + "/health").json()
        assert health["status"] == "ok" and set(health["models"]) == {"gemma", "tiny"}
        assert set(httpx.get(s.url + "/slots").json()) == {"gemma", "tiny"}
    finally:
        s.close()
