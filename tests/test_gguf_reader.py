"""The GGUF reader: good files read back exactly; bad files raise GGUFError
(file, offset, reason) and nothing else: no crash, hang or MemoryError."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFWriter

import hetinfer
from gguf_bytes import GGUFBytes, TensorSpec, gguf_string, small_model
from hetinfer import GGUFError


def write(tmp_path, data: bytes, name: str = "m.gguf") -> str:
    p = tmp_path / name
    p.write_bytes(data)
    return str(p)


def test_reads_small_model(tmp_path):
    path = write(tmp_path, small_model().build())
    with hetinfer.open_gguf(path) as f:
        assert f.version == 3 and f.architecture == "llama"
        assert f.metadata["llama.block_count"] == 1
        assert f.metadata["tokenizer.ggml.tokens"] == ["a", "b", "\u2581c"]
        np.testing.assert_array_equal(f.metadata["tokenizer.ggml.scores"], [0.0, -1.0, -2.0])
        np.testing.assert_array_equal(f.tensor("norm.weight").dequantize(), np.arange(8))
        w = f.tensor("w.weight")
        assert w.shape == (2, 32) and w.type == GGMLQuantizationType.Q8_0 and w.nbytes == 68
        np.testing.assert_array_equal(w.dequantize(), np.tile(np.arange(32, dtype=np.float32), (2, 1)))


def test_reads_gguf_writer_file(tmp_path, rng):
    path = str(tmp_path / "w.gguf")
    w = GGUFWriter(path, "qwen3")
    w.add_uint32("qwen3.block_count", 3)
    w.add_float32("qwen3.rope.freq_base", 1e6)
    w.add_bool("tokenizer.ggml.add_bos_token", False)
    w.add_array("tokenizer.ggml.merges", ["a b", "ab c"])
    a = rng.standard_normal((3, 64)).astype(np.float32)
    w.add_tensor("t.weight", a)
    w.add_tensor("h.weight", a.astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with hetinfer.open_gguf(path) as f:
        assert f.architecture == "qwen3" and f.metadata["qwen3.block_count"] == 3
        assert f.metadata["tokenizer.ggml.add_bos_token"] is False
        assert f.metadata["tokenizer.ggml.merges"] == ["a b", "ab c"]
        np.testing.assert_array_equal(f.tensor("t.weight").dequantize(), a)
        np.testing.assert_array_equal(f.tensor("h.weight").dequantize(), a.astype(np.float16).astype(np.float32))


def test_open_does_not_read_tensor_data(gemma_path):
    with hetinfer.open_gguf(gemma_path) as f:
        t = f.tensor("token_embd.weight")
        assert isinstance(t.data.base, np.memmap) or isinstance(t.data, np.memmap)
        assert len(f.metadata["tokenizer.ggml.tokens"]) == 262144


def resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs Linux /proc to read resident memory")
def test_opening_a_40_gb_file_reads_only_the_header(tmp_path):
    g = GGUFBytes()
    g.kv_str("general.architecture", "llama")
    ne = [8192, 40 * 2**30 // (8192 * 2)]  # 40 GiB of F16
    g.tensors.append(TensorSpec("huge.weight", ne, 1, b""))
    path = tmp_path / "huge.gguf"
    path.write_bytes(g.build())
    os.truncate(path, path.stat().st_size + 40 * 2**30)  # sparse: no disk blocks, no page cache
    before = resident_bytes()
    with hetinfer.open_gguf(path) as f:
        t = f.tensor("huge.weight")
        assert t.nbytes == 40 * 2**30 and t.shape == (ne[1], 8192)
        first_row = t.data[: 8192 * 2]  # touching a slice maps just those pages
        assert not first_row.any()
    assert resident_bytes() - before < 64 * 2**20


def expect_error(tmp_path, data: bytes, match: str, offset: int | None = -1) -> GGUFError:
    path = write(tmp_path, data)
    with pytest.raises(GGUFError, match=match) as info:
        hetinfer.open_gguf(path)
    err = info.value
    assert err.path == path and path in str(err)
    if offset != -1:
        assert err.offset == offset
    return err


def test_bad_magic(tmp_path):
    expect_error(tmp_path, b"GGML" + small_model().build()[4:], "bad magic", offset=0)


def test_empty_and_tiny_files(tmp_path):
    expect_error(tmp_path, b"", "truncated header", offset=0)
    expect_error(tmp_path, b"GGUF\x03\x00", "truncated header", offset=0)


def test_missing_file(tmp_path):
    with pytest.raises(GGUFError, match="cannot open"):
        hetinfer.open_gguf(tmp_path / "absent.gguf")


@pytest.mark.parametrize("version,match", [(1, "unsupported GGUF version 1"), (4, "unsupported GGUF version 4"),
                                           (0x03000000, "big-endian")])
def test_unsupported_versions(tmp_path, version, match):
    g = small_model()
    g.version = version
    expect_error(tmp_path, g.build(), match, offset=4)


def test_version_2_reads(tmp_path):
    g = small_model()
    g.version = 2
    with hetinfer.open_gguf(write(tmp_path, g.build())) as f:
        assert f.version == 2 and len(f.tensors) == 2


def test_every_truncation_of_the_header_is_a_clean_error(tmp_path):
    data = small_model().build()
    with hetinfer.open_gguf(write(tmp_path, data, "full.gguf")) as f:
        header_end = f.data_offset
    for cut in range(header_end):
        expect_error(tmp_path, data[:cut], "truncated")


def test_truncated_tensor_data(tmp_path):
    data = small_model().build()
    err = expect_error(tmp_path, data[:-40], "past the end of the file")
    assert "w.weight" in str(err)


@pytest.mark.parametrize("field", ["tensor_count", "kv_count"])
def test_absurd_counts(tmp_path, field):
    g = small_model()
    setattr(g, field, 1 << 62)
    expect_error(tmp_path, g.build(), "absurd", offset=8 if field == "tensor_count" else 16)


def test_absurd_array_and_string_lengths(tmp_path):
    g = GGUFBytes()
    g.kvs.append(gguf_string("big.array") + struct.pack("<IIQ", 9, 6, 1 << 61))
    expect_error(tmp_path, g.build(), "absurd array length")
    g = GGUFBytes()
    g.kvs.append(gguf_string("big.strings") + struct.pack("<IIQ", 9, 8, 1 << 60))
    expect_error(tmp_path, g.build(), "absurd array length")
    g = GGUFBytes()
    g.kvs.append(struct.pack("<Q", 1 << 63) + b"key")
    expect_error(tmp_path, g.build(), "truncated metadata key")


def test_deeply_nested_arrays(tmp_path):
    g = GGUFBytes()
    g.kvs.append(gguf_string("nest") + struct.pack("<IIQ", 9, 9, 1) + struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 9, 1))
    expect_error(tmp_path, g.build(), "nests arrays deeper")


def test_unknown_value_type(tmp_path):
    g = GGUFBytes()
    g.kvs.append(gguf_string("k") + struct.pack("<I", 77) + b"\0" * 8)
    expect_error(tmp_path, g.build(), "unknown metadata value type 77")


def test_duplicate_key_and_tensor(tmp_path):
    g = small_model().kv_u32("llama.block_count", 2)
    expect_error(tmp_path, g.build(), "duplicate metadata key 'llama.block_count'")
    g = small_model()
    g.tensors.append(TensorSpec("norm.weight", [8], 0, bytes(32)))
    expect_error(tmp_path, g.build(), "duplicate tensor name 'norm.weight'")


def test_unknown_tensor_type(tmp_path):
    g = small_model()
    g.tensors[0].type_id = 99
    expect_error(tmp_path, g.build(), "unknown type id 99")


def test_known_but_unsupported_type_fails_on_use(tmp_path):
    g = GGUFBytes()
    g.tensors.append(TensorSpec("iq.weight", [256], int(GGMLQuantizationType.IQ2_XXS), bytes(66)))
    with hetinfer.open_gguf(write(tmp_path, g.build())) as f:
        t = f.tensor("iq.weight")
        assert not t.supported
        with pytest.raises(GGUFError, match="IQ2_XXS, which hetinfer does not support"):
            t.dequantize()


@pytest.mark.parametrize("ne,match", [([30, 2], "not a multiple of the Q8_0 block size 32"),
                                      ([32, 0], "zero-sized dimension"),
                                      ([32, 1 << 40], "past the end of the file"),
                                      ([1 << 40, 1 << 40, 1 << 40, 1 << 40], "past the end of the file")])
def test_shape_size_mismatch(tmp_path, ne, match):
    g = small_model()
    g.tensors[1].ne = ne
    expect_error(tmp_path, g.build(), match)


@pytest.mark.parametrize("n_dims", [0, 5, 1 << 31])
def test_bad_dimension_count(tmp_path, n_dims):
    g = small_model()
    data = bytearray(g.build())
    pos = data.index(gguf_string("w.weight")) + len(gguf_string("w.weight"))
    data[pos:pos + 4] = struct.pack("<I", n_dims)
    expect_error(tmp_path, bytes(data), "dimensions")


def test_misaligned_and_out_of_range_offsets(tmp_path):
    g = small_model()
    g.tensors[1].offset = 33
    expect_error(tmp_path, g.build(), "not a multiple of the alignment")
    g = small_model()
    g.tensors[1].offset = 1 << 60
    expect_error(tmp_path, g.build(), "past the end of the file")


def test_tensors_sharing_bytes(tmp_path):
    g = small_model()
    g.tensors[1].offset = 0  # w.weight over norm.weight's bytes
    expect_error(tmp_path, g.build(), r"tensor 'w.weight' data \[\d+, \d+\) overlaps tensor 'norm.weight'")


def test_bad_alignment(tmp_path):
    g = small_model().kv_u32("general.alignment", 48)
    expect_error(tmp_path, g.build(), "not a power of two")


def test_invalid_utf8_key(tmp_path):
    g = GGUFBytes()
    g.kvs.append(gguf_string(b"\xff\xfe") + struct.pack("<II", 4, 1))
    expect_error(tmp_path, g.build(), "not valid UTF-8")


def test_random_corruption_never_escapes_as_another_exception(tmp_path, rng):
    data = small_model().build()
    with hetinfer.open_gguf(write(tmp_path, data, "full.gguf")) as f:
        header_end = f.data_offset
    for i in range(300):
        corrupt = bytearray(data)
        for pos in rng.integers(0, header_end, size=int(rng.integers(1, 4))):
            corrupt[pos] = int(rng.integers(0, 256))
        path = write(tmp_path, bytes(corrupt), f"c{i % 4}.gguf")
        try:
            with hetinfer.open_gguf(path) as f:
                for t in f.tensors.values():
                    if t.supported:
                        t.dequantize()
        except GGUFError:
            pass
