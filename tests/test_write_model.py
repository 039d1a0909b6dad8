"""hetinfer.testing.write_model: the files open with gguf's reader and look like llama.cpp's.

Expectations (key names aside, which come from gguf's constants) are written
out here rather than taken from the writer, so a mistake there shows up here.
"""

from __future__ import annotations

import gguf
import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf import GGUFReader, Keys, LlamaFileType, TokenType

from hetinfer.testing import reference_tensors, write_model

ARCH_NAMES = ("llama", "qwen2", "qwen3", "gemma3")
QUANTS = ("F32", "Q8_0", "Q4_K_M", "Q6_K")

# Default shape (write_model's docstring) and what each architecture adds to it.
N_EMBD, N_LAYER, N_HEAD, N_HEAD_KV, N_FF, N_CTX, N_VOCAB = 256, 2, 4, 2, 640, 2048, 512
DEFAULTS = {
    #          head_dim, rope_theta, rms_eps, tied
    "llama": (64, 1e4, 1e-5, False),
    "qwen2": (64, 1e6, 1e-6, False),
    "qwen3": (128, 1e6, 1e-6, False),
    "gemma3": (128, 1e6, 1e-6, True),
}
FILE_TYPES = {"F32": LlamaFileType.ALL_F32, "Q8_0": LlamaFileType.MOSTLY_Q8_0,
              "Q4_K_M": LlamaFileType.MOSTLY_Q4_K_M, "Q6_K": LlamaFileType.MOSTLY_Q6_K}
# relative RMS error of quantising N(0, 1) data, with headroom
TOLERANCE = {Q.F32: 0.0, Q.F16: 1e-3, Q.BF16: 5e-3, Q.Q8_0: 1e-2, Q.Q6_K: 3e-2, Q.Q5_0: 6e-2,
             Q.Q5_1: 6e-2, Q.Q5_K: 6e-2, Q.Q4_0: 0.12, Q.Q4_1: 0.12, Q.Q4_K: 0.12, Q.Q3_K: 0.25, Q.Q2_K: 0.45}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    """write_model(arch, quant) with default shape, written once per module."""
    cache = {}

    def get(arch, quant):
        if (arch, quant) not in cache:
            cache[arch, quant] = write_model(tmp_path_factory.mktemp("m") / f"{arch}-{quant}.gguf", arch, quant)
        return cache[arch, quant]
    return get


def read(path):
    reader = GGUFReader(path)
    meta = {name: field.contents() for name, field in reader.fields.items()}
    return reader, meta


def key(template, arch):
    return template.format(arch=arch)


def expected_tensors(arch):
    """{name: numpy shape (n_out, n_in)} of every tensor llama.cpp loads for ``arch`` at the default shape."""
    head_dim, _, _, tied = DEFAULTS[arch]
    q, kv = N_HEAD * head_dim, N_HEAD_KV * head_dim
    block = {
        "attn_norm.weight": (N_EMBD,), "attn_q.weight": (q, N_EMBD), "attn_k.weight": (kv, N_EMBD),
        "attn_v.weight": (kv, N_EMBD), "attn_output.weight": (N_EMBD, q), "ffn_norm.weight": (N_EMBD,),
        "ffn_gate.weight": (N_FF, N_EMBD), "ffn_up.weight": (N_FF, N_EMBD), "ffn_down.weight": (N_EMBD, N_FF),
    }
    if arch == "qwen2":
        block |= {"attn_q.bias": (q,), "attn_k.bias": (kv,), "attn_v.bias": (kv,)}
    if arch in ("qwen3", "gemma3"):
        block |= {"attn_q_norm.weight": (head_dim,), "attn_k_norm.weight": (head_dim,)}
    if arch == "gemma3":
        block |= {"post_attention_norm.weight": (N_EMBD,), "post_ffw_norm.weight": (N_EMBD,)}
    tensors = {"token_embd.weight": (N_VOCAB, N_EMBD), "output_norm.weight": (N_EMBD,)}
    if not tied:
        tensors["output.weight"] = (N_VOCAB, N_EMBD)
    for i in range(N_LAYER):
        tensors |= {f"blk.{i}.{name}": shape for name, shape in block.items()}
    return tensors


def types_by_name(reader):
    return {t.name: t.tensor_type for t in reader.tensors}


# --- metadata ------------------------------------------------------------------

@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_metadata(model_file, arch, quant):
    _, meta = read(model_file(arch, quant))
    head_dim, rope_theta, rms_eps, _ = DEFAULTS[arch]
    assert meta[Keys.General.ARCHITECTURE] == arch
    assert meta[Keys.General.NAME]
    assert meta[Keys.General.FILE_TYPE] == FILE_TYPES[quant]
    assert meta[Keys.General.QUANTIZATION_VERSION] == 2
    expected = {
        Keys.LLM.CONTEXT_LENGTH: N_CTX, Keys.LLM.EMBEDDING_LENGTH: N_EMBD, Keys.LLM.BLOCK_COUNT: N_LAYER,
        Keys.LLM.FEED_FORWARD_LENGTH: N_FF, Keys.Attention.HEAD_COUNT: N_HEAD, Keys.Attention.HEAD_COUNT_KV: N_HEAD_KV,
    }
    for template, value in expected.items():
        assert meta[key(template, arch)] == value, template
    assert meta[key(Keys.Attention.LAYERNORM_RMS_EPS, arch)] == pytest.approx(rms_eps)
    assert meta[key(Keys.Rope.FREQ_BASE, arch)] == pytest.approx(rope_theta)

    # head_dim keys where llama.cpp's n_embd / n_head default would be wrong, and always for qwen3/gemma3
    wide = arch in ("qwen3", "gemma3")
    for template in (Keys.Attention.KEY_LENGTH, Keys.Attention.VALUE_LENGTH):
        assert meta.get(key(template, arch)) == (head_dim if wide else None)
    llama = arch == "llama"
    assert meta.get(key(Keys.Rope.DIMENSION_COUNT, arch)) == (head_dim if llama else None)
    assert meta.get(key(Keys.LLM.VOCAB_SIZE, arch)) == (N_VOCAB if llama else None)
    assert meta.get(key(Keys.Attention.SLIDING_WINDOW, arch)) == (128 if arch == "gemma3" else None)


def test_head_dim_keys_follow_explicit_head_dim(tmp_path):
    reader, meta = read(write_model(tmp_path / "m.gguf", "llama", "F32", head_dim=32))
    for template in (Keys.Attention.KEY_LENGTH, Keys.Attention.VALUE_LENGTH, Keys.Rope.DIMENSION_COUNT):
        assert meta[key(template, "llama")] == 32
    attn_q = next(t for t in reader.tensors if t.name == "blk.0.attn_q.weight")
    assert tuple(attn_q.shape[::-1]) == (N_HEAD * 32, N_EMBD)


# --- tensors -------------------------------------------------------------------

@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_tensors_and_shapes(model_file, arch, quant):
    reader, _ = read(model_file(arch, quant))
    found = {t.name: tuple(int(d) for d in t.shape[::-1]) for t in reader.tensors}  # reader: ggml ne order
    assert found == expected_tensors(arch)
    # and every one is a tensor gguf lists for this architecture
    known = {gguf.TENSOR_NAMES[t].format(bid=i)
             for t in gguf.MODEL_TENSORS[gguf.MODEL_ARCH[arch.upper()]] for i in range(N_LAYER)}
    assert {name.rsplit(".", 1)[0] for name in found} <= known


@pytest.mark.parametrize("quant", ["F32", "Q8_0", "Q6_K"])
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_plain_quant_types(model_file, arch, quant):
    reader, _ = read(model_file(arch, quant))
    for t in reader.tensors:
        if len(t.shape) == 1:
            assert t.tensor_type == Q.F32, t.name
        elif quant == "Q6_K" and t.name.endswith("ffn_down.weight"):
            assert t.tensor_type == Q.Q8_0, t.name  # rows of 640 are not whole 256-blocks: llama.cpp's fallback
        else:
            assert t.tensor_type == Q[quant], t.name


def test_q4_k_m_follows_llama_cpp(tmp_path):
    """8 layers: use_more_bits picks layers 0, 3, 6, 7 (first/last eighth, every third between)."""
    more_bits = {0, 3, 6, 7}
    types = _types(tmp_path, "llama", "Q4_K_M", n_layer=8)
    assert types["token_embd.weight"] == Q.Q4_K
    assert types["output.weight"] == Q.Q6_K
    for i in range(8):
        assert types[f"blk.{i}.attn_v.weight"] == (Q.Q6_K if i in more_bits else Q.Q4_K)
        # n_ff=640 rows: Q6_K -> Q8_0 and Q4_K -> Q5_0
        assert types[f"blk.{i}.ffn_down.weight"] == (Q.Q8_0 if i in more_bits else Q.Q5_0)
        for name in ("attn_q", "attn_k", "attn_output", "ffn_gate", "ffn_up"):
            assert types[f"blk.{i}.{name}.weight"] == Q.Q4_K
        assert types[f"blk.{i}.attn_norm.weight"] == Q.F32
    assert set(types.values()) == {Q.F32, Q.Q4_K, Q.Q5_0, Q.Q6_K, Q.Q8_0}


def test_tied_embedding_is_quantised_like_the_output(tmp_path):
    types = _types(tmp_path, "gemma3", "Q4_K_M")
    assert "output.weight" not in types
    assert types["token_embd.weight"] == Q.Q6_K


def test_other_mixes(tmp_path):
    q3 = _types(tmp_path, "llama", "Q3_K_M", n_layer=4, n_ff=512)
    assert [q3[f"blk.{i}.attn_v.weight"] for i in range(4)] == [Q.Q5_K, Q.Q5_K, Q.Q4_K, Q.Q4_K]
    assert q3["blk.0.attn_output.weight"] == Q.Q4_K and q3["blk.0.attn_q.weight"] == Q.Q3_K
    assert q3["blk.0.ffn_down.weight"] == Q.Q4_K  # i >= n_layer / 16
    q4s = _types(tmp_path, "llama", "Q4_K_S", n_layer=8, n_ff=512)
    assert [q4s[f"blk.{i}.attn_v.weight"] for i in range(8)] == [Q.Q5_K] * 4 + [Q.Q4_K] * 4
    assert [q4s[f"blk.{i}.ffn_down.weight"] for i in range(2)] == [Q.Q5_K, Q.Q4_K]
    q5m = _types(tmp_path, "qwen2", "Q5_K_M", n_ff=512)
    assert q5m["blk.1.attn_v.weight"] == Q.Q6_K and q5m["blk.0.attn_v.weight"] == Q.Q5_K


def test_rows_not_a_multiple_of_32_fall_back_to_f16(tmp_path):
    types = _types(tmp_path, "llama", "Q4_K_M", n_ff=200)
    assert types["blk.0.ffn_down.weight"] == Q.F16
    assert types["blk.0.ffn_up.weight"] == Q.Q4_K  # its rows are n_embd long


def _types(tmp_path, arch, quant, **shape):
    reader, _ = read(write_model(tmp_path / f"{arch}-{quant}.gguf", arch, quant, **shape))
    return types_by_name(reader)


# --- values --------------------------------------------------------------------

@pytest.mark.parametrize("quant", QUANTS)
@pytest.mark.parametrize("arch", ARCH_NAMES)
def test_round_trip(model_file, arch, quant):
    reader, _ = read(model_file(arch, quant))
    reference = reference_tensors(arch, seed=0)
    for t in reader.tensors:
        assert_close_to_reference(t, reference[t.name])


@pytest.mark.parametrize("quant", ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K"])
def test_every_type_round_trips(tmp_path, quant):
    shape = {"n_layer": 1, "n_ff": 512}  # every row a whole number of 256-blocks: no fallbacks
    reader, _ = read(write_model(tmp_path / "m.gguf", "llama", quant, **shape))
    reference = reference_tensors("llama", **shape)
    matrices = [t for t in reader.tensors if len(t.shape) == 2]
    assert {t.tensor_type for t in matrices} == {Q[quant]}
    for t in matrices:
        assert_close_to_reference(t, reference[t.name])


def assert_close_to_reference(t, want):
    """gguf's own dequantisation of stored tensor ``t`` is within its type's error of ``want``."""
    got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(want.shape)
    err = np.sqrt(np.mean((got - want) ** 2)) / np.sqrt(np.mean(want ** 2))
    assert err <= TOLERANCE[t.tensor_type], (t.name, t.tensor_type.name, err)


def test_values_are_sane():
    w = reference_tensors("gemma3", seed=1)
    assert abs(np.std(w["blk.0.attn_q.weight"]) - 1 / np.sqrt(N_EMBD)) < 0.01
    assert abs(np.mean(w["blk.0.attn_norm.weight"]) - 1) < 0.05  # gemma norms stored with the +1 applied
    embd = w["token_embd.weight"]
    assert len(np.unique(embd, axis=0)) == embd.shape[0]


def test_same_seed_same_bytes_other_seed_other_weights(tmp_path):
    a = write_model(tmp_path / "a.gguf", "qwen2", "Q4_K_M", seed=7).read_bytes()
    b = write_model(tmp_path / "b.gguf", "qwen2", "Q4_K_M", seed=7).read_bytes()
    assert a == b
    c_reader, c_meta = read(write_model(tmp_path / "c.gguf", "qwen2", "Q4_K_M", seed=8))
    a_reader, a_meta = read(tmp_path / "a.gguf")
    assert c_meta == a_meta
    for ta, tc in zip(a_reader.tensors, c_reader.tensors):
        assert ta.name == tc.name and not np.array_equal(ta.data, tc.data), ta.name


# --- vocabulary ----------------------------------------------------------------

def gpt2_byte_symbols():
    """GPT-2's byte-to-unicode alphabet."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    others = [b for b in range(256) if b not in printable]
    return {chr(b) for b in printable} | {chr(256 + i) for i in range(len(others))}


VOCABS = {
    # arch, tokenizer: model, pre, bos, eos, specials
    ("llama", "spm"): ("llama", "default", "<s>", "</s>", ["<unk>", "<s>", "</s>"]),
    ("gemma3", "spm"): ("llama", "default", "<bos>", "<eos>",
                        ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>"]),
    ("qwen2", "bpe"): ("gpt2", "qwen2", "<|endoftext|>", "<|im_end|>",
                       ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]),
    ("llama", "bpe"): ("gpt2", "llama-bpe", "<|begin_of_text|>", "<|eot_id|>",
                       ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>",
                        "<|eot_id|>"]),
}


@pytest.fixture(scope="module")
def vocab_meta(tmp_path_factory):
    cache = {}

    def get(arch, tokenizer, n_vocab=N_VOCAB):
        if (arch, tokenizer, n_vocab) not in cache:
            path = tmp_path_factory.mktemp("v") / "m.gguf"
            cache[arch, tokenizer, n_vocab] = read(write_model(
                path, arch, "F32", n_layer=1, n_embd=64, n_ff=64, tokenizer=tokenizer, n_vocab=n_vocab))[1]
        return cache[arch, tokenizer, n_vocab]
    return get


@pytest.mark.parametrize("arch,tokenizer", list(VOCABS))
def test_vocab(vocab_meta, arch, tokenizer):
    meta = vocab_meta(arch, tokenizer)
    model, pre, bos, eos, specials = VOCABS[arch, tokenizer]
    tokens = meta[Keys.Tokenizer.LIST]
    types = meta[Keys.Tokenizer.TOKEN_TYPE]
    assert meta[Keys.Tokenizer.MODEL] == model and meta[Keys.Tokenizer.PRE] == pre
    assert len(tokens) == len(types) == N_VOCAB == len(set(tokens))
    ids = {t: i for i, t in enumerate(tokens)}
    assert tokens[meta[Keys.Tokenizer.BOS_ID]] == bos
    assert tokens[meta[Keys.Tokenizer.EOS_ID]] == eos
    assert meta[Keys.Tokenizer.PAD_ID] in range(len(tokens))
    for s in specials:
        assert types[ids[s]] == (TokenType.UNKNOWN if s == "<unk>" else TokenType.CONTROL), s
    assert not meta[Keys.Tokenizer.ADD_EOS]
    assert meta[Keys.Tokenizer.CHAT_TEMPLATE]
    if model == "llama":
        _check_sentencepiece(meta, arch, tokens, types, ids)
    else:
        _check_bpe(meta, tokens, ids)


def _check_sentencepiece(meta, arch, tokens, types, ids):
    gemma = arch == "gemma3"
    assert tokens[:3] == (["<pad>", "<eos>", "<bos>"] if gemma else ["<unk>", "<s>", "</s>"])
    assert meta[Keys.Tokenizer.UNK_ID] == ids["<unk>"]
    for b in range(256):
        assert types[ids[f"<0x{b:02X}>"]] == TokenType.BYTE
    scores = meta[Keys.Tokenizer.SCORES]
    assert len(scores) == len(tokens)
    assert scores[ids["\u2581the"]] > scores[ids["e"]]  # a frequent piece outranks a bare character
    assert "\u2581t" in ids and "\u2581token" in ids
    assert "🙂" not in ids and "\n" not in ids  # spelled with byte fallback
    assert meta[Keys.Tokenizer.ADD_BOS]
    assert bool(meta[Keys.Tokenizer.ADD_PREFIX]) is (not gemma)


def _check_bpe(meta, tokens, ids):
    assert gpt2_byte_symbols() <= set(tokens)
    merges = meta[Keys.Tokenizer.MERGES]
    assert merges
    for merge in merges:
        left, right = merge.split(" ")
        assert left in ids and right in ids and left + right in ids, merge
    assert "Ġthe" in ids  # " the"
    assert bool(meta[Keys.Tokenizer.ADD_BOS]) is (meta[Keys.Tokenizer.PRE] == "llama-bpe")
    assert Keys.Tokenizer.SCORES not in meta


@pytest.mark.parametrize("arch,tokenizer", [("llama", "spm"), ("qwen2", "bpe")])
def test_vocab_larger_than_the_corpus_is_padded(vocab_meta, arch, tokenizer):
    meta = vocab_meta(arch, tokenizer, 4000)
    tokens, types = meta[Keys.Tokenizer.LIST], meta[Keys.Tokenizer.TOKEN_TYPE]
    assert len(tokens) == len(set(tokens)) == 4000
    assert types[-1] == TokenType.CONTROL


CHATS = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
         {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Bye"}]
RENDERED = {
    ("llama", "spm"): "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello. </s><s>[INST] Bye [/INST]",
    ("gemma3", "spm"): "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello."
                       "<end_of_turn>\n<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n",
    ("qwen2", "bpe"): "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
                      "<|im_start|>assistant\nHello.<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n"
                      "<|im_start|>assistant\n",
    ("llama", "bpe"): "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                      "<|start_header_id|>user<|end_header_id|>\n\nBye<|eot_id|>"
                      "<|start_header_id|>assistant<|end_header_id|>\n\n",
}


@pytest.mark.parametrize("arch,tokenizer", list(VOCABS))
def test_chat_template_renders(vocab_meta, arch, tokenizer):
    jinja2 = pytest.importorskip("jinja2")
    meta = vocab_meta(arch, tokenizer)
    tokens = meta[Keys.Tokenizer.LIST]
    template = jinja2.Environment().from_string(meta[Keys.Tokenizer.CHAT_TEMPLATE])
    text = template.render(messages=CHATS, add_generation_prompt=True,
                           bos_token=tokens[meta[Keys.Tokenizer.BOS_ID]],
                           eos_token=tokens[meta[Keys.Tokenizer.EOS_ID]])
    assert text == RENDERED[arch, tokenizer]


# --- arguments -----------------------------------------------------------------

@pytest.mark.parametrize("args,kwargs,named", [
    (("gpt9",), {}, "llama, qwen2, qwen3, gemma3"),
    (("llama", "Q7_K"), {}, "Q4_K_M"),
    (("llama",), {"n_head": 4, "n_head_kv": 3}, "n_head_kv"),
    (("llama",), {"n_embd": 0}, "n_embd"),
    (("llama",), {"n_layer": -1}, "n_layer"),
    (("llama",), {"n_ff": 2.5}, "n_ff"),
    (("llama",), {"n_embd": 250}, "n_head"),
    (("llama",), {"head_dim": 63}, "head_dim"),
    (("llama",), {"rope_theta": 0}, "rope_theta"),
    (("llama",), {"rms_eps": float("nan")}, "rms_eps"),
    (("llama",), {"sliding_window": 64}, "sliding_window"),
    (("gemma3",), {"sliding_window": 0}, "sliding_window"),
    (("gemma3",), {"tokenizer": "bpe"}, "tokenizer"),
    (("llama",), {"tie_embeddings": "yes"}, "tie_embeddings"),
    (("qwen2",), {"n_vocab": 100}, "n_vocab"),
    (("llama",), {"seed": -1}, "seed"),
])
def test_bad_arguments_name_the_argument(tmp_path, args, kwargs, named):
    path = tmp_path / "m.gguf"
    with pytest.raises(ValueError, match=named):
        write_model(path, *args, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_unknown_keyword_is_a_type_error(tmp_path):
    with pytest.raises(TypeError, match="n_embed"):
        write_model(tmp_path / "m.gguf", "llama", n_embed=64)


def test_failure_leaves_previous_file_untouched(tmp_path, monkeypatch):
    from hetinfer.testing import model_writer

    path = tmp_path / "m.gguf"
    path.write_bytes(b"old")

    def broken(values, qtype):
        raise RuntimeError("quantiser failed")
    monkeypatch.setattr(model_writer, "_encode", broken)
    with pytest.raises(RuntimeError):
        write_model(path, "llama", "Q8_0")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["m.gguf"]


@pytest.mark.parametrize("qtype", list(TOLERANCE))
def test_random_blocks_dequantise_to_small_finite_weights(rng, qtype):
    from hetinfer.testing.random_blocks import random_blocks

    raw = random_blocks(qtype, (3, 512), rng)
    values = gguf.quants.dequantize(raw, qtype).reshape(3, 512)
    assert np.isfinite(values).all() and 0 < np.abs(values).max() < 0.2
    assert np.abs(values).mean() > 1e-4  # not all (nearly) zero


def test_random_codes_model_runs(tmp_path):
    from hetinfer.model import Model

    path = write_model(tmp_path / "fast.gguf", "llama", "Q4_K_M", random_codes=True, seed=3)
    types = {t.tensor_type for t in GGUFReader(path).tensors}
    assert {Q.Q4_K, Q.Q6_K} <= types
    with Model(path, n_ctx=32) as m:
        assert np.isfinite(m.eval_logits([1, 2, 3])).all()
