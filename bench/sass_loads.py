"""Global and shared load instructions of each kernel in a kernels/cuda source,
counted from its machine code (SASS), by width.

Static counts (both sides of every branch, one per instruction, not per
execution): they show how many load instructions a kernel issues for the
bytes it reads, which on a GPU decides how many L1 wavefronts a memory-bound
kernel costs. No GPU is needed: nvcc compiles for the architecture, cuobjdump
and nvdisasm (PyPI: nvidia-cuda-cuobjdump, nvidia-cuda-nvdisasm) disassemble.

    python bench/sass_loads.py kernels/cuda/mmvq.cu --arch 90 [--define NAME=VALUE]
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

from kernel_names import short_name

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INCLUDES = ["kernels", "kernels/common", "kernels/cuda", "csrc"]
# LDG.E.U8.CONSTANT, LDG.E.64, LDS.128, ...: the width is the suffix that is a size.
LOAD = re.compile(r"\b(LDG|LDS)((?:\.[A-Z0-9_]+)*)")
WIDTHS = {"U8": "8", "S8": "8", "U16": "16", "S16": "16", "64": "64", "128": "128"}
COLUMNS = ["LDG 8", "LDG 16", "LDG 32", "LDG 64", "LDG 128", "LDS 32", "LDS 64", "LDS 128"]


def tool(name: str) -> str:
    path = shutil.which(name)
    if not path:
        sys.exit(f"{name} not found on PATH (pip install nvidia-cuda-cuobjdump nvidia-cuda-nvdisasm, "
                 "then put their nvidia/cu13/bin on PATH)")
    return path


def load_counts(sass: str) -> dict[str, collections.Counter]:
    """Kernel (demangled) -> Counter of 'LDG 32'-style keys."""
    kernels: dict[str, collections.Counter] = {}
    current = None
    for line in sass.splitlines():
        if "Function :" in line:
            current = line.split("Function :")[1].strip()
            kernels[current] = collections.Counter()
            continue
        m = LOAD.search(line)
        if current is None or not m:
            continue
        width = next((WIDTHS[s] for s in m.group(2).split(".") if s in WIDTHS), "32")
        kernels[current][f"{m.group(1)} {width}"] += 1
    names = list(kernels)
    demangled = subprocess.run([tool("c++filt")], input="\n".join(names), capture_output=True, text=True,
                               check=True).stdout.splitlines()
    return {short_name(d): kernels[n] for n, d in zip(names, demangled)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("source", help="a .cu file, e.g. kernels/cuda/mmvq.cu")
    ap.add_argument("--arch", default="90", help="compute capability without the dot (default 90)")
    ap.add_argument("--match", default="", help="only kernels whose name contains this")
    ap.add_argument("--define", action="append", default=[], help="a -D for nvcc (repeatable)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cubin = os.path.join(tmp, "k.cubin")
        subprocess.run([tool("nvcc"), "-std=c++17", f"-arch=sm_{args.arch}", "-cubin", "-o", cubin,
                        *[f"-I{os.path.join(ROOT, d)}" for d in INCLUDES], *[f"-D{d}" for d in args.define],
                        os.path.join(ROOT, args.source) if not os.path.isabs(args.source) else args.source],
                       check=True)
        tool("nvdisasm")  # cuobjdump -sass runs it
        sass = subprocess.run([tool("cuobjdump"), "-sass", cubin], capture_output=True, text=True, check=True).stdout
    counts = load_counts(sass)
    print(f"| kernel (sm_{args.arch}) | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name in sorted(counts):
        if args.match in name:
            print(f"| `{name}` | " + " | ".join(str(counts[name][c] or "") for c in COLUMNS) + " |")


if __name__ == "__main__":
    main()
