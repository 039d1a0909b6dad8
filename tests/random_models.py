"""Small random models of every architecture, written once per test module."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from hetinfer.testing import write_model

ARCHS = ["llama", "qwen2", "qwen3", "gemma3"]
# gemma3 with six layers has five sliding-window layers and a global one; a
# window of 5 makes prompts of a dozen tokens exercise it.
SHAPES = {"gemma3": {"n_layer": 6, "sliding_window": 5}}


def nmse(y: np.ndarray, ref: np.ndarray) -> float:
    return float(np.sum((y - ref) ** 2) / np.sum(ref ** 2))


def model_factory(folder: Path, seed: int) -> Callable[[str, str], str]:
    """get(arch, quant) -> path of a random model, written on first use."""
    cache: dict[tuple[str, str], str] = {}

    def get(arch: str, quant: str) -> str:
        if (arch, quant) not in cache:
            cache[(arch, quant)] = str(write_model(folder / f"{arch}-{quant}.gguf", arch=arch, quant=quant,
                                                   seed=seed, **SHAPES.get(arch, {})))
        return cache[(arch, quant)]

    return get
