"""Short names of demangled CUDA kernel names, for the tables of
bench/sass_loads.py and bench/ncu_summary.py."""

from __future__ import annotations

import re


def short_name(demangled: str) -> str:
    """'void hi::cuda::(anonymous namespace)::mmvq_kernel<hi::block_q4_0, (hi::cuda::RowLayout)2>(...)'
    -> 'mmvq_kernel<block_q4_0, 2>' (a name without an argument list stays whole)."""
    name = re.sub(r"hi::|cuda::|\(anonymous namespace\)::|RowLayout|^void ", "", demangled)
    depth = 0
    for i in range(len(name) - 1, -1, -1):  # drop the argument list: the group that closes the name
        depth += {")": 1, "(": -1}.get(name[i], 0)
        if depth == 0:
            if name[i] == "(":
                name = name[:i]
            break
    return re.sub(r"\(\)(\d)", r"\1", name)
