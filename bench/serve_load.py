"""Load benchmark of the server: aggregate generated tokens per second and time
to first token at 1, 2, 4 and 8 concurrent streaming clients.

    python bench/serve_load.py [MODEL] [--streams 1 2 4 8] [--tokens 64] [--repeats 3] [--threads N]

Starts `python -m hetinfer.serve` with as many slots as the most streams, then
for each concurrency runs that many clients at once, each streaming a
completion of --tokens tokens (ignore_eos) from its own prompt. Prints a
markdown table of medians over the repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import httpx

from hetinfer.testing.server import ServerProcess

PROMPTS = ["The capital of France is", "def fibonacci(n):", "Once upon a time", "1, 2, 3, 4,",
           "The best way to learn", "Water boils at", "My favourite colour is", "import numpy as np\n"]


def one_stream(url: str, prompt: str, tokens: int, out: list, index: int) -> None:
    start = time.perf_counter()
    first = None
    body = {"prompt": prompt, "max_tokens": tokens, "ignore_eos": True, "temperature": 0, "stream": True}
    with httpx.stream("POST", url + "/v1/completions", json=body, timeout=600) as r:
        r.raise_for_status()
        for line in r.iter_lines():
            if line.startswith("data: {") and first is None and json.loads(line[6:])["choices"][0]["text"]:
                first = time.perf_counter()
    out[index] = (first - start, time.perf_counter() - start)


def run(url: str, streams: int, tokens: int) -> tuple[float, float]:
    """(aggregate tokens/s, median time to first token) of one round."""
    out: list = [None] * streams
    threads = [threading.Thread(target=one_stream, args=(url, PROMPTS[i % len(PROMPTS)], tokens, out, i))
               for i in range(streams)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    return streams * tokens / wall, statistics.median(ttft for ttft, _ in out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", nargs="?", help="a .gguf file (default: the embedded Gemma 3 270M)")
    p.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--tokens", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args()
    args = ["-np", str(max(a.streams)), "-c", "512"] + (["-m", a.model] if a.model else [])
    args += ["-t", str(a.threads)] if a.threads else []
    server = ServerProcess(*args)
    try:
        run(server.url, 1, 8)  # warm-up
        print("| streams | aggregate tokens/s | per stream tokens/s | time to first token ms |")
        print("|---:|---:|---:|---:|")
        for n in a.streams:
            rounds = [run(server.url, n, a.tokens) for _ in range(a.repeats)]
            tps = statistics.median(r[0] for r in rounds)
            ttft = statistics.median(r[1] for r in rounds)
            print(f"| {n} | {tps:.1f} | {tps / n:.1f} | {ttft * 1000:.0f} |", flush=True)
    finally:
        server.close()


if __name__ == "__main__":
    main()
