"""The `hetinfer` command line, run in-process."""

from __future__ import annotations

import json

import numpy as np
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


def test_bench_parallel_sequences(tiny, capsys):
    assert main(["bench", tiny, "-p", "0", "-n", "3", "-r", "1", "-np", "1,4", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["test"], r["n_tokens"]) for r in rows] == [("tg3", 3), ("tg3 x4", 12)]
    with pytest.raises(SystemExit):
        main(["bench", tiny, "-np", "0"])
    assert "must be 1 or more" in capsys.readouterr().err


def test_bench_at_depth(tiny, capsys, monkeypatch):
    """-d D: each test runs after D tokens already in the context, its tokens at positions D on."""
    from hetinfer.model import Model

    decoded = []  # (positions of each decode call)
    real = Model.decode
    monkeypatch.setattr(Model, "decode", lambda self, ids, seq, pos, wanted=None: (
        decoded.append(np.array(pos)), real(self, ids, seq, pos, wanted))[1])
    assert main(["bench", tiny, "-p", "8", "-n", "3", "-r", "1", "-d", "20", "-np", "1,2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["test"] for r in rows] == ["pp8 @ d20", "tg3 @ d20", "tg3 x2 @ d20"]
    assert all(r["n_depth"] == 20 for r in rows)
    # The fills start at 0; every timed step starts at position 20 (pp: the prompt; tg: each token after the last).
    timed = [p for p in decoded if p.min() >= 20]
    assert [int(p.min()) for p in timed] == [20, 20] + [20, 21, 22] * 2 + [20, 21, 22] * 2
    with pytest.raises(SystemExit):
        main(["bench", tiny, "-d", "-1"])
    assert "must be 0 or more" in capsys.readouterr().err


def test_bench_rejects_unavailable_device(tiny, capsys):
    assert main(["bench", tiny, "--devices", "cuda:99"]) == 2
    err = capsys.readouterr().err
    assert "device 'cuda:99'" in err and ("is not available" in err or "does not exist" in err)


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
    out = capsys.readouterr().out
    assert out.startswith("cpu")
    assert ("cuda:N   not available" in out or "cuda:0" in out) and "GiB free" in out


def test_plan_table_json_and_plot(tiny, capsys, tmp_path):
    assert main(["plan", tiny, "--devices", "cpu:0,cpu:1", "-ts", "1,1", "-c", "512", "-np", "2"]) == 0
    out = capsys.readouterr().out
    assert "| cpu:0" in out and "| cpu:1" in out and "x 2 sequence(s)" in out
    png = tmp_path / "plan.png"
    assert main(["plan", tiny, "--devices", "cpu:0,cpu:1", "--json", "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["fits"] and [d["device"] for d in doc["devices"]] == ["cpu:0", "cpu:1"]
    assert sum(d["layers"][1] - d["layers"][0] for d in doc["devices"]) == 2
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plan_that_does_not_fit_exits_1_with_suggestions(tiny, capsys):
    assert main(["plan", tiny, "-c", "65536", "--max-memory", "cpu=8MiB"]) == 1
    out = capsys.readouterr().out
    assert "NO" in out and "what would:" in out and "n_ctx=" in out


def test_run_split_over_two_devices_prints_what_one_device_prints(tiny, capsys):
    args = ["run", tiny, "-p", "hello", "-n", "6", "--temp", "0", "-c", "64"]
    assert main(args) == 0
    one = capsys.readouterr().out
    assert main(args + ["--devices", "cpu:0,cpu:1", "-sm", "layer", "-ts", "1,1"]) == 0
    assert capsys.readouterr().out == one


def test_bad_split_flags(tiny, capsys):
    assert main(["run", tiny, "-p", "x", "--devices", "cpu:0,cpu:1", "-sm", "none"]) == 2
    assert "one device" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["plan", tiny, "-ts", "a,b"])
    assert "numbers such as 3,2" in capsys.readouterr().err


def test_tune_picks_a_ratio_and_sweeps(tiny, capsys):
    assert main(["tune", tiny, "--devices", "cpu:0,cpu:1", "--device-threads", "cpu:0=1,cpu:1=1",
                 "--n-tokens", "8", "-r", "1", "--sweep"]) == 0
    out = capsys.readouterr().out
    assert "| cpu:0 |" in out and "| cpu:1 |" in out and "picked: --tensor-split" in out
    picked = [int(v) for v in out.split("picked: --tensor-split ")[1].split()[0].split(",")]
    assert sum(picked) == 2                      # the tiny model's two layers
    assert "| 1,1" in out and "best: --tensor-split 1,1" in out   # the only split of two layers


def test_ratio_follows_speed():
    from hetinfer.tune import DeviceTiming, ratio_for

    assert ratio_for([DeviceTiming("a", 1.0), DeviceTiming("b", 3.0)], 8) == [6, 2]
    assert ratio_for([DeviceTiming("a", 2.0), DeviceTiming("b", 2.0), DeviceTiming("c", 1.0)], 8) == [2, 2, 4]


def test_device_threads_flag(capsys):
    with pytest.raises(SystemExit):
        main(["plan", "--device-threads", "cpu:0=none"])
    assert "positive count" in capsys.readouterr().err
