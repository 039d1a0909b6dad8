"""The `hetinfer` command line, run in-process."""

from __future__ import annotations

import json

import pytest

from hetinfer.cli import main
from hetinfer.testing import write_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(write_model(tmp_path_factory.mktemp("cli") / "tiny.gguf", arch="qwen3", quant="Q4_K_M"))


def test_bench_json(tiny, capsys):
    assert main(["bench", tiny, "-p", "16", "-n", "4", "-r", "2", "-t", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in rows] == ["pp16", "tg4"]
    for r in rows:
        assert r["tokens_per_second"] > 0 and r["stddev"] >= 0 and len(r["samples"]) == 2
        assert r["n_threads"] == 1 and r["devices"] == "cpu"


def test_bench_table(tiny, capsys):
    assert main(["bench", tiny, "-p", "8", "-n", "0", "-r", "1"]) == 0
    out = capsys.readouterr().out
    assert "| qwen3" in out and "pp8" in out and "tg" not in out


def test_bench_rejects_unavailable_device(tiny, capsys):
    assert main(["bench", tiny, "--devices", "cuda:0"]) == 2
    assert "device 'cuda:0' is not available" in capsys.readouterr().err


def test_run_streams_and_reports_speed(tiny, capsys):
    assert main(["run", tiny, "-p", "hello", "-n", "5", "--temp", "0", "-c", "64"]) == 0
    out = capsys.readouterr()
    assert out.out.startswith("hello")
    assert "prompt:" in out.err and "generation:" in out.err and "tokens/s" in out.err


def test_run_chat_and_bad_sampling(tiny, capsys):
    assert main(["run", tiny, "-p", "hi", "--chat", "-n", "3", "-c", "64", "-s", "1"]) == 0
    assert main(["run", tiny, "-p", "hi", "-n", "3", "--temp", "-2"]) == 2
    assert "temperature" in capsys.readouterr().err


def test_inspect(tiny, capsys):
    assert main(["inspect", tiny, "--tensors"]) == 0
    out = capsys.readouterr().out
    assert "general.architecture" in out and "blk.0.attn_q.weight" in out


def test_inspect_bad_file(tmp_path, capsys):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 16)
    assert main(["inspect", str(bad)]) == 2
    assert "absurd tensor count" in capsys.readouterr().err


def test_devices(capsys):
    assert main(["devices"]) == 0
    assert capsys.readouterr().out.startswith("cpu")
