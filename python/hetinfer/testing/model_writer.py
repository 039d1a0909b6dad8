"""``write_model``: a small random-weight GGUF of a real architecture, loadable as llama.cpp loads it."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_VERSION, GGMLQuantizationType, GGUFWriter

from .model_spec import ModelSpec, check_seed, model_spec
from .quant_mix import QuantPlan, quant_plan
from .vocab import Vocab, build_vocab
from .random_blocks import random_blocks
from .weights import TensorSpec, tensor_layout, tensor_values


def write_model(path: str | os.PathLike, arch: str = "llama", quant: str = "Q4_K_M", *,
                seed: int = 0, random_codes: bool = False, **shape: object) -> Path:
    """Write a GGUF v3 test model to ``path`` and return the path.

    ``arch``: "llama", "qwen2", "qwen3" or "gemma3". ``quant``: a GGUF type name
    (every matrix in that type) or a llama.cpp mix ("Q4_K_M", "Q4_K_S", "Q5_K_M",
    "Q5_K_S", "Q3_K_S", "Q3_K_M", "Q3_K_L"); see ``quant_mix``. Weights are
    random but a function of ``seed`` only (``reference_tensors`` gives them
    unquantised). Shape keywords and their defaults:

    - n_embd=256, n_layer=2, n_head=4, n_head_kv=2, n_ctx_train=2048
    - n_ff=640: not a multiple of 256, so ffn_down shows llama.cpp's fallbacks
      (a default Q4_K_M file holds Q4_K, Q5_0, Q6_K, Q8_0 and F32 like a real one)
    - head_dim: n_embd // n_head; qwen3 and gemma3 default to twice that, as in
      Qwen3-0.6B, so the "head_dim != n_embd / n_head" path is always exercised
    - rope_theta: llama 1e4, qwen2/qwen3/gemma3 1e6 (gemma3's local layers use
      10000, fixed by llama.cpp and not stored)
    - rms_eps: llama 1e-5, others 1e-6
    - sliding_window (gemma3 only): 128; llama.cpp makes every 6th layer global,
      so pass n_layer >= 6 to get one
    - tie_embeddings: True for gemma3 (no output.weight), False for the others
    - n_vocab=512: exact token count (see ``vocab``)
    - tokenizer: "spm" (llama, gemma3) or "bpe" (qwen2, qwen3; llama -> Llama 3 style)

    ``random_codes``: matrices hold random codes with small random scales
    instead of quantised random weights (``reference_tensors`` no longer
    applies). For speed tests at real model sizes (Llama-3-8B shapes), which
    would take hours to quantise; the codes are valid, so any engine runs them.

    Bad arguments raise ValueError naming the argument. The file is written
    beside ``path`` under a temporary name and renamed over it, so a failure
    leaves no partial file at ``path``.
    """
    spec = model_spec(arch, **shape)
    plan = quant_plan(quant)
    seed = check_seed(seed)
    vocab = build_vocab(spec.vocab_style, spec.n_vocab)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write(tmp, spec, plan, vocab, seed, random_codes)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write(path: Path, spec: ModelSpec, plan: QuantPlan, vocab: Vocab, seed: int, random_codes: bool) -> None:
    writer = GGUFWriter(path, spec.traits.name)
    rng = np.random.default_rng(seed)
    try:
        _add_hparams(writer, spec, plan)
        vocab.write_to(writer)
        for t in tensor_layout(spec):
            if random_codes and t.is_matrix:
                qtype = plan.matrix_type(t.kind, t.layer, spec.n_layer, t.shape[1], spec.tie_embeddings)
                writer.add_tensor(t.name, random_blocks(qtype, t.shape, rng), raw_dtype=qtype)
            else:
                _add_tensor(writer, t, tensor_values(t, seed), spec, plan)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()


def _add_hparams(writer: GGUFWriter, spec: ModelSpec, plan: QuantPlan) -> None:
    """general.* and {arch}.* keys, as convert_hf_to_gguf and llama-quantize write them."""
    writer.add_name(f"hetinfer test {spec.arch}")
    writer.add_file_type(plan.file_type)
    writer.add_quantization_version(GGML_QUANT_VERSION)
    writer.add_context_length(spec.n_ctx_train)
    writer.add_embedding_length(spec.n_embd)
    writer.add_block_count(spec.n_layer)
    writer.add_feed_forward_length(spec.n_ff)
    writer.add_head_count(spec.n_head)
    writer.add_head_count_kv(spec.n_head_kv)
    writer.add_layer_norm_rms_eps(spec.rms_eps)
    writer.add_rope_freq_base(spec.rope_theta)
    if spec.writes_head_dim:
        writer.add_key_length(spec.head_dim)
        writer.add_value_length(spec.head_dim)
    if spec.traits.llama_keys:
        writer.add_rope_dimension_count(spec.head_dim)
        writer.add_vocab_size(spec.n_vocab)
    if spec.sliding_window is not None:
        writer.add_sliding_window(spec.sliding_window)


def _add_tensor(writer: GGUFWriter, t: TensorSpec, values: np.ndarray, spec: ModelSpec, plan: QuantPlan) -> None:
    if not t.is_matrix:
        writer.add_tensor(t.name, values)  # float32 -> F32
        return
    qtype = plan.matrix_type(t.kind, t.layer, spec.n_layer, t.shape[1], spec.tie_embeddings)
    # bytes (rows, row_bytes) plus raw_dtype: the writer records the logical (rows, n_in) shape
    writer.add_tensor(t.name, _encode(values, qtype), raw_dtype=qtype)


def _encode(values: np.ndarray, qtype: GGMLQuantizationType) -> np.ndarray:
    """(rows, n) float32 -> (rows, row_bytes) uint8 in ``qtype``; the native quantiser, imported late
    so that building specs and vocabularies needs no native code."""
    from hetinfer.quants import quantize

    return quantize(values, qtype.name)
