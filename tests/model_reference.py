"""A float64 numpy forward pass of llama / qwen2 / qwen3 / gemma3 GGUFs, written
independently of hetinfer's runner, from the architectures' published rules."""

from __future__ import annotations

import numpy as np

import hetinfer


def _rms(x: np.ndarray, w: np.ndarray | None, eps: float) -> np.ndarray:
    y = x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps)
    return y if w is None else y * w


def _rope(x: np.ndarray, pos: np.ndarray, n_rot: int, base: float, neox: bool) -> np.ndarray:
    """x: (n, heads, d)."""
    y = x.copy()
    half = n_rot // 2
    ang = pos[:, None] * base ** (-2.0 * np.arange(half) / n_rot)  # (n, half)
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    a = np.arange(half) if neox else 2 * np.arange(half)
    b = a + half if neox else a + 1
    x0, x1 = x[..., a], x[..., b]
    y[..., a] = x0 * cos - x1 * sin
    y[..., b] = x0 * sin + x1 * cos
    return y


def reference_logits(path: str, tokens: list[int]) -> np.ndarray:
    """(len(tokens), n_vocab) float64 logits of one sequence starting at position 0."""
    with hetinfer.open_gguf(path) as f:
        meta = f.metadata
        arch = meta["general.architecture"]

        def w(name: str) -> np.ndarray | None:
            t = f.tensors.get(name)
            return None if t is None else t.dequantize().astype(np.float64)

        def hp(key: str, default=None):
            return meta.get(f"{arch}.{key}", default)

        n_embd, n_head = hp("embedding_length"), hp("attention.head_count")
        n_kv = hp("attention.head_count_kv", n_head)
        dk = hp("attention.key_length", n_embd // n_head)
        dv = hp("attention.value_length", dk)
        n_rot = hp("rope.dimension_count", dk)
        eps = hp("attention.layer_norm_rms_epsilon")
        gemma = arch == "gemma3"
        neox = arch != "llama"
        ids = np.asarray(tokens)
        pos = np.arange(len(ids), dtype=np.float64)
        x = w("token_embd.weight")[ids] * (np.sqrt(n_embd) if gemma else 1.0)
        causal = pos[None, :] <= pos[:, None]  # (query, key)
        for il in range(hp("block_count")):
            p = f"blk.{il}."
            local = gemma and il % 6 < 5  # llama.cpp: five sliding-window layers, then a global one
            base = 10000.0 if local else hp("rope.freq_base", 10000.0)
            visible = causal & ((pos[:, None] - pos[None, :]) < hp("attention.sliding_window")) if local else causal
            h = _rms(x, w(p + "attn_norm.weight"), eps)
            q, k, v = (h @ w(p + f"attn_{n}.weight").T for n in "qkv")
            if w(p + "attn_q.bias") is not None:
                q, k, v = q + w(p + "attn_q.bias"), k + w(p + "attn_k.bias"), v + w(p + "attn_v.bias")
            q, k, v = q.reshape(len(ids), n_head, dk), k.reshape(len(ids), n_kv, dk), v.reshape(len(ids), n_kv, dv)
            if w(p + "attn_q_norm.weight") is not None:
                q, k = _rms(q, w(p + "attn_q_norm.weight"), eps), _rms(k, w(p + "attn_k_norm.weight"), eps)
            q, k = _rope(q, pos, n_rot, base, neox), _rope(k, pos, n_rot, base, neox)
            rep = n_head // n_kv
            out = np.empty((len(ids), n_head, dv))
            for hd in range(n_head):
                s = q[:, hd] @ k[:, hd // rep].T / np.sqrt(dk)
                s = np.where(visible, s, -np.inf)
                pr = np.exp(s - s.max(axis=1, keepdims=True))
                out[:, hd] = (pr / pr.sum(axis=1, keepdims=True)) @ v[:, hd // rep]
            o = out.reshape(len(ids), -1) @ w(p + "attn_output.weight").T
            if gemma:
                o = _rms(o, w(p + "post_attention_norm.weight"), eps)
            x = x + o
            h = _rms(x, w(p + "ffn_norm.weight"), eps)
            g, u = h @ w(p + "ffn_gate.weight").T, h @ w(p + "ffn_up.weight").T
            act = 0.5 * g * (1 + np.tanh(np.sqrt(2 / np.pi) * (g + 0.044715 * g ** 3))) if gemma else g / (1 + np.exp(-g))
            d = (act * u) @ w(p + "ffn_down.weight").T
            if gemma:
                d = _rms(d, w(p + "post_ffw_norm.weight"), eps)
            x = x + d
        out_w = w("output.weight")
        return _rms(x, w("output_norm.weight"), eps) @ (w("token_embd.weight") if out_w is None else out_w).T
