"""hetinfer beside llama.cpp on the same GGUF files, same threads, one run.

    python bench/vs_llama_cpp.py MODEL.gguf [MODEL.gguf ...] --llama-python PATH [-p 512] [-n 128] [-r 3] [-t 2]

llama.cpp is driven through llama-cpp-python (`pip install llama-cpp-python`
builds llama.cpp from source; keep it out of CI) in a subprocess run with the
interpreter given by --llama-python. Both engines follow llama-bench's
protocol: ppN = prefill N random tokens into an empty context (logits of the
last), tgN = N single-token decodes from an empty context; median tokens/s
over repeats after one warm-up. Prints a markdown table with the ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

LLAMA_CPP_SIDE = textwrap.dedent("""
    import json, statistics, sys, time
    import numpy as np
    from llama_cpp import Llama
    path, n_prompt, n_gen, repeats, threads = sys.argv[1], *map(int, sys.argv[2:6])
    llm = Llama(model_path=path, n_ctx=max(n_prompt, n_gen) + 8, n_batch=512, n_threads=threads,
                n_threads_batch=threads, verbose=False)
    rng = np.random.default_rng(0)
    def timed(tokens, one_by_one):
        llm.reset()
        start = time.perf_counter()
        if one_by_one:
            for t in tokens:
                llm.eval([int(t)])
        else:
            llm.eval([int(t) for t in tokens])
        return time.perf_counter() - start
    out = {}
    for name, n, one in (("pp", n_prompt, False), ("tg", n_gen, True)):
        tokens = rng.integers(0, llm.n_vocab(), n)
        secs = [timed(tokens, one) for _ in range(repeats + 1)][1:]
        out[f"{name}{n}"] = statistics.median(n / s for s in secs)
    print(json.dumps(out))
""")


def llama_cpp(python: str, path: str, n_prompt: int, n_gen: int, repeats: int, threads: int) -> dict:
    res = subprocess.run([python, "-c", LLAMA_CPP_SIDE, path, str(n_prompt), str(n_gen), str(repeats), str(threads)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def hetinfer_side(path: str, n_prompt: int, n_gen: int, repeats: int, threads: int) -> dict:
    from hetinfer.bench import run_bench
    from hetinfer.model import Model

    with Model(path, n_ctx=max(n_prompt, n_gen) + 8, n_threads=threads) as m:
        return {r.test: r.tokens_per_second for r in run_bench(m, n_prompt=n_prompt, n_gen=n_gen, repeats=repeats)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="+")
    ap.add_argument("--llama-python", required=True, help="a Python interpreter with llama_cpp installed")
    ap.add_argument("-p", type=int, default=512)
    ap.add_argument("-n", type=int, default=128)
    ap.add_argument("-r", type=int, default=3)
    ap.add_argument("-t", type=int, default=2)
    a = ap.parse_args()
    print("| model | test | hetinfer t/s | llama.cpp t/s | ratio |")
    print("|---|---|---:|---:|---:|")
    for path in a.models:
        ours = hetinfer_side(path, a.p, a.n, a.r, a.t)
        theirs = llama_cpp(a.llama_python, path, a.p, a.n, a.r, a.t)
        for test in ours:
            print(f"| {path.rsplit('/', 1)[-1]} | {test} | {ours[test]:.2f} | {theirs[test]:.2f} | "
                  f"{ours[test] / theirs[test]:.2f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())
