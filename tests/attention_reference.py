"""Attention in float64 numpy over dequantised caches, the reference of the
attention tests on every device (test_ops.py) and of the emulated CUDA kernel
(test_cuda_emulated.py)."""

from __future__ import annotations

import numpy as np


def attention_over(q, k, v, visible, scale: float, softcap: float) -> np.ndarray:
    """q (n_q, n_head, dk); k (n_cells, n_head_kv, dk); v (n_cells, n_head_kv, dv);
    visible[t]: the cells query t sees (indices or a boolean mask). Queries that
    see none give zeros. Returns (n_q, n_head, dv) float64."""
    n_q, n_head, _ = q.shape
    n_rep = n_head // k.shape[1]
    out = np.zeros((n_q, n_head, v.shape[2]))
    for t in range(n_q):
        seen = np.asarray(visible[t])
        if seen.dtype == bool:
            seen = np.flatnonzero(seen)
        if seen.size == 0:
            continue
        for h in range(n_head):
            s = scale * (k[seen, h // n_rep] @ q[t, h].astype(np.float64))
            if softcap > 0:
                s = softcap * np.tanh(s / softcap)
            p = np.exp(s - s.max())
            out[t, h] = (p / p.sum()) @ v[seen, h // n_rep]
    return out


def long_cache_decode(rng, n_cells: int = 1300):
    """A decode step of 3 sequences in a cache of n_cells cells (more than 512:
    CUDA splits such a step's cells): 1100 cells of sequence 0, 5 of sequence
    1, none of sequence 2, stored in a shuffled order. Returns cell_seq,
    cell_pos (n_cells,) and the queries' q_seq, q_pos (3,)."""
    cell_seq = np.full(n_cells, -1, np.int32)
    cell_seq[rng.permutation(n_cells)[:1105]] = np.repeat(np.array([0, 1], np.int32), [1100, 5])
    cell_pos = np.zeros(n_cells, np.int32)
    for s in (0, 1):
        cell_pos[cell_seq == s] = rng.permutation(np.sum(cell_seq == s))
    return cell_seq, cell_pos, np.array([0, 1, 2], np.int32), np.array([1099, 4, 0], np.int32)
