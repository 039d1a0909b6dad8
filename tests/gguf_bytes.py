"""A tiny GGUF byte builder for reader tests: every field explicit, so tests
can corrupt exactly the field they mean to."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ALIGN = 32


def gguf_string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(raw)) + raw


@dataclass
class TensorSpec:
    name: str
    ne: list[int]          # GGUF order (fastest dimension first)
    type_id: int
    data: bytes
    offset: int | None = None  # relative to the data section; None = packed in order


@dataclass
class GGUFBytes:
    version: int = 3
    kvs: list[bytes] = field(default_factory=list)  # each: key string + type + value
    tensors: list[TensorSpec] = field(default_factory=list)
    tensor_count: int | None = None
    kv_count: int | None = None

    def kv_u32(self, key: str, v: int) -> GGUFBytes:
        self.kvs.append(gguf_string(key) + struct.pack("<II", 4, v))
        return self

    def kv_str(self, key: str, v: str) -> GGUFBytes:
        self.kvs.append(gguf_string(key) + struct.pack("<I", 8) + gguf_string(v))
        return self

    def kv_str_array(self, key: str, items: list[str]) -> GGUFBytes:
        body = b"".join(gguf_string(s) for s in items)
        self.kvs.append(gguf_string(key) + struct.pack("<IIQ", 9, 8, len(items)) + body)
        return self

    def kv_f32_array(self, key: str, items: list[float]) -> GGUFBytes:
        body = struct.pack(f"<{len(items)}f", *items)
        self.kvs.append(gguf_string(key) + struct.pack("<IIQ", 9, 6, len(items)) + body)
        return self

    def build(self) -> bytes:
        head = b"GGUF" + struct.pack("<I", self.version)
        head += struct.pack("<QQ", len(self.tensors) if self.tensor_count is None else self.tensor_count,
                            len(self.kvs) if self.kv_count is None else self.kv_count)
        head += b"".join(self.kvs)
        offsets, pos = [], 0
        for t in self.tensors:
            offsets.append(pos if t.offset is None else t.offset)
            pos += -(-len(t.data) // ALIGN) * ALIGN
        for t, off in zip(self.tensors, offsets):
            head += gguf_string(t.name) + struct.pack("<I", len(t.ne)) + struct.pack(f"<{len(t.ne)}Q", *t.ne)
            head += struct.pack("<IQ", t.type_id, off)
        head += b"\0" * (-len(head) % ALIGN)
        data = b"".join(t.data + b"\0" * (-len(t.data) % ALIGN) for t in self.tensors)
        return head + data


def small_model() -> GGUFBytes:
    """Two tensors (F32 and Q8_0) and a few metadata values of several kinds."""
    import numpy as np

    f32 = np.arange(8, dtype=np.float32).tobytes()
    q8 = (b"\x00\x3c" + bytes(range(32))) * 2  # d = 1.0, codes 0..31, two blocks
    g = GGUFBytes()
    g.kv_str("general.architecture", "llama").kv_u32("llama.block_count", 1)
    g.kv_str_array("tokenizer.ggml.tokens", ["a", "b", "\u2581c"]).kv_f32_array("tokenizer.ggml.scores", [0.0, -1.0, -2.0])
    g.tensors += [TensorSpec("norm.weight", [8], 0, f32), TensorSpec("w.weight", [32, 2], 8, q8)]
    return g
