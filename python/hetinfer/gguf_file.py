"""Memory-mapped, validating GGUF (v2/v3) reader.

Why not ``gguf.GGUFReader``: it builds numpy objects for every string of a
vocabulary (13 s to open the 250 MB Gemma 3 270M file here) and trusts the
counts it reads. This reader walks the header once with every count and length
checked against the bytes that remain, so a truncated or hostile file raises
GGUFError (file, offset, what is wrong) instead of hanging, crashing or
exhausting memory. The tensor data is never read at open: tensors are views
into the memory map. Type ids, sizes and names come from the ``gguf`` package.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFValueType

from . import quants
from .errors import GGUFError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_DIMS = 4            # ggml tensors have at most four dimensions
MAX_ARRAY_NESTING = 2   # arrays of arrays of scalars at most
DEFAULT_ALIGNMENT = 32

_SCALARS: dict[GGUFValueType, tuple[str, np.dtype]] = {
    GGUFValueType.UINT8: ("<B", np.dtype("<u1")),
    GGUFValueType.INT8: ("<b", np.dtype("<i1")),
    GGUFValueType.UINT16: ("<H", np.dtype("<u2")),
    GGUFValueType.INT16: ("<h", np.dtype("<i2")),
    GGUFValueType.UINT32: ("<I", np.dtype("<u4")),
    GGUFValueType.INT32: ("<i", np.dtype("<i4")),
    GGUFValueType.FLOAT32: ("<f", np.dtype("<f4")),
    GGUFValueType.BOOL: ("<?", np.dtype("?")),
    GGUFValueType.UINT64: ("<Q", np.dtype("<u8")),
    GGUFValueType.INT64: ("<q", np.dtype("<i8")),
    GGUFValueType.FLOAT64: ("<d", np.dtype("<f8")),
}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor: ``shape`` in numpy order (GGUF's ne reversed), ``data`` its raw bytes."""

    name: str
    type: GGMLQuantizationType
    shape: tuple[int, ...]
    offset: int          # absolute file offset of the data
    nbytes: int
    data: np.ndarray     # (nbytes,) uint8 view into the memory map
    path: str

    @property
    def n_elements(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def supported(self) -> bool:
        return self.type in quants.SUPPORTED_TYPES

    def dequantize(self) -> np.ndarray:
        """float32 array of ``shape``, computed by the native kernels."""
        if not self.supported:
            names = ", ".join(t.name for t in quants.SUPPORTED_TYPES)
            raise GGUFError(self.path, self.offset,
                            f"tensor {self.name!r} has type {self.type.name}, which hetinfer does not "
                            f"support (supported: {names})")
        return quants.dequantize_bytes(self.data, self.type, self.shape)


class _Cursor:
    """Bounds-checked little-endian reads from the mapped file."""

    def __init__(self, path: str, buf: memoryview):
        self.path, self.buf, self.pos = path, buf, 0

    def fail(self, reason: str, offset: int | None = None) -> GGUFError:
        return GGUFError(self.path, self.pos if offset is None else offset, reason)

    def remaining(self) -> int:
        return len(self.buf) - self.pos

    def need(self, n: int, what: str) -> None:
        if n > self.remaining():
            raise self.fail(f"truncated {what}: needs {n} bytes, {self.remaining()} left in the file")

    def scalar(self, fmt: str, what: str):
        size = struct.calcsize(fmt)
        self.need(size, what)
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self, what: str, errors: str = "strict") -> str:
        start = self.pos
        length = self.scalar("<Q", f"{what} length")
        self.need(length, what)
        raw = bytes(self.buf[self.pos:self.pos + length])
        self.pos += length
        try:
            return raw.decode("utf-8", errors=errors)
        except UnicodeDecodeError as e:
            raise self.fail(f"{what} is not valid UTF-8 ({e.reason})", start) from None

    def count(self, what: str, min_item_bytes: int) -> int:
        """A u64 count, rejected when its items could not fit in the rest of the file."""
        start = self.pos
        n = self.scalar("<Q", what)
        if n * min_item_bytes > self.remaining():
            raise self.fail(f"absurd {what} {n}: the {self.remaining()} bytes left hold at most "
                            f"{self.remaining() // min_item_bytes} (truncated or corrupt file)", start)
        return n

    def value_type(self, what: str) -> GGUFValueType:
        start = self.pos
        raw = self.scalar("<I", what)
        try:
            return GGUFValueType(raw)
        except ValueError:
            raise self.fail(f"unknown metadata value type {raw} for {what}", start) from None


def _read_value(cur: _Cursor, vtype: GGUFValueType, key: str, depth: int = 0) -> Any:
    if vtype in _SCALARS:
        return cur.scalar(_SCALARS[vtype][0], f"value of {key!r}")
    if vtype == GGUFValueType.STRING:
        # Vocabulary pieces may hold partial UTF-8; surrogateescape keeps their exact bytes.
        return cur.string(f"string value of {key!r}", errors="surrogateescape")
    # ARRAY
    if depth >= MAX_ARRAY_NESTING:
        raise cur.fail(f"metadata {key!r} nests arrays deeper than {MAX_ARRAY_NESTING}")
    item_type = cur.value_type(f"array item type of {key!r}")
    if item_type in _SCALARS:
        dtype = _SCALARS[item_type][1]
        n = cur.count(f"array length of {key!r}", dtype.itemsize)
        arr = np.frombuffer(cur.buf, dtype=dtype, count=n, offset=cur.pos).copy()
        cur.pos += n * dtype.itemsize
        return arr
    min_item = 8 if item_type == GGUFValueType.STRING else 12  # a string length, or a nested header
    n = cur.count(f"array length of {key!r}", min_item)
    return [_read_value(cur, item_type, key, depth + 1) for _ in range(n)]


class GGUFFile:
    """An open GGUF file: ``metadata`` (key -> value), ``tensors`` (name -> GGUFTensor).

    Use as a context manager or call close(); tensor views stay valid while referenced.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            size = os.path.getsize(self.path)
        except OSError as e:
            raise GGUFError(self.path, None, f"cannot open: {e.strerror or e}") from None
        if size < 24:
            raise GGUFError(self.path, 0, f"truncated header: file has {size} bytes, a GGUF header needs 24")
        self._map = np.memmap(self.path, dtype=np.uint8, mode="r")
        cur = _Cursor(self.path, memoryview(self._map))
        self.version = self._read_preamble(cur)
        n_tensors = cur.count("tensor count", 32)   # name length, n_dims, one dim, type, offset
        n_kv = cur.count("metadata key/value count", 13)  # key length, type, 1-byte value
        self.metadata: dict[str, Any] = {}
        self.value_types: dict[str, GGUFValueType] = {}
        for _ in range(n_kv):
            self._read_kv(cur)
        self.alignment = self._alignment()
        infos = [self._read_tensor_info(cur) for _ in range(n_tensors)]
        self.data_offset = -(-cur.pos // self.alignment) * self.alignment
        self.tensors: dict[str, GGUFTensor] = {}
        for info in infos:
            tensor = self._make_tensor(*info)
            if tensor.name in self.tensors:
                raise GGUFError(self.path, info[-1], f"duplicate tensor name {tensor.name!r}")
            self.tensors[tensor.name] = tensor
        self._check_no_shared_bytes()

    def _check_no_shared_bytes(self) -> None:
        """No two tensors share bytes (llama.cpp wants them packed in order): a
        file that says otherwise is damaged or hostile, and a device that copies
        each tensor in its own layout would hold one of them wrong."""
        by_start = sorted(self.tensors.values(), key=lambda t: t.offset)
        for a, b in zip(by_start, by_start[1:]):
            if b.offset < a.offset + a.nbytes:
                raise GGUFError(self.path, b.offset, f"tensor {b.name!r} data [{b.offset}, {b.offset + b.nbytes}) "
                                                     f"overlaps tensor {a.name!r} [{a.offset}, {a.offset + a.nbytes})")

    @staticmethod
    def _read_preamble(cur: _Cursor) -> int:
        magic = bytes(cur.buf[0:4])
        if magic != GGUF_MAGIC:
            raise cur.fail(f"bad magic {magic!r}: not a GGUF file (expected {GGUF_MAGIC!r})", 0)
        cur.pos = 4
        version = cur.scalar("<I", "version")
        if version not in SUPPORTED_VERSIONS:
            if version & 0xFFFF == 0 and (version >> 24) in SUPPORTED_VERSIONS:
                raise cur.fail("big-endian GGUF files are not supported", 4)
            raise cur.fail(f"unsupported GGUF version {version} (supported: 2, 3)", 4)
        return version

    def _read_kv(self, cur: _Cursor) -> None:
        start = cur.pos
        key = cur.string("metadata key")
        if key in self.metadata:
            raise cur.fail(f"duplicate metadata key {key!r}", start)
        vtype = cur.value_type(f"type of {key!r}")
        self.metadata[key] = _read_value(cur, vtype, key)
        self.value_types[key] = vtype

    def _alignment(self) -> int:
        align = self.metadata.get("general.alignment", DEFAULT_ALIGNMENT)
        if "general.alignment" in self.metadata and self.value_types["general.alignment"] != GGUFValueType.UINT32:
            raise GGUFError(self.path, None, "general.alignment must be a uint32")
        if align <= 0 or align & (align - 1):
            raise GGUFError(self.path, None, f"general.alignment {align} is not a power of two")
        return int(align)

    def _read_tensor_info(self, cur: _Cursor) -> tuple:
        start = cur.pos
        name = cur.string("tensor name")
        n_dims = cur.scalar("<I", f"dimension count of {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise cur.fail(f"tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)", start)
        ne = [cur.scalar("<Q", f"dimensions of {name!r}") for _ in range(n_dims)]
        type_pos = cur.pos
        raw_type = cur.scalar("<I", f"type of {name!r}")
        try:
            ttype = GGMLQuantizationType(raw_type)
        except ValueError:
            raise cur.fail(f"tensor {name!r} has unknown type id {raw_type}", type_pos) from None
        rel_offset = cur.scalar("<Q", f"data offset of {name!r}")
        return name, ne, ttype, rel_offset, start

    def _make_tensor(self, name: str, ne: list[int], ttype: GGMLQuantizationType,
                     rel_offset: int, info_offset: int) -> GGUFTensor:
        def bad(reason: str) -> GGUFError:
            return GGUFError(self.path, info_offset, f"tensor {name!r}: {reason}")

        if any(d == 0 for d in ne):
            raise bad(f"zero-sized dimension in {ne}")
        n = 1
        for d in ne:
            n *= d  # Python ints: a hostile shape cannot overflow, it just fails the bounds check
        block_values, block_bytes = GGML_QUANT_SIZES[ttype]
        if ne[0] % block_values:
            raise bad(f"row length {ne[0]} is not a multiple of the {ttype.name} block size {block_values}")
        nbytes = n // block_values * block_bytes
        if rel_offset % self.alignment:
            raise bad(f"data offset {rel_offset} is not a multiple of the alignment {self.alignment}")
        start = self.data_offset + rel_offset
        if start + nbytes > len(self._map):
            raise bad(f"data [{start}, {start + nbytes}) runs past the end of the file "
                      f"({len(self._map)} bytes): truncated tensor data")
        return GGUFTensor(name, ttype, tuple(int(d) for d in reversed(ne)), start, nbytes,
                          self._map[start:start + nbytes], self.path)

    @property
    def architecture(self) -> str | None:
        return self.metadata.get("general.architecture")

    def tensor(self, name: str) -> GGUFTensor:
        try:
            return self.tensors[name]
        except KeyError:
            raise KeyError(f"{self.path} has no tensor named {name!r} ({len(self.tensors)} tensors)") from None

    def close(self) -> None:
        """Drop this file's reference to the memory map (views handed out stay valid)."""
        self._map = None
        self.tensors = {}

    def __enter__(self) -> GGUFFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_gguf(path: str | os.PathLike) -> GGUFFile:
    """Open and validate a GGUF file (memory-mapped; nothing is read into RAM up front)."""
    return GGUFFile(path)


def dequantize(path: str | os.PathLike, tensor_name: str) -> np.ndarray:
    """float32 array (the tensor's shape) of one tensor of a GGUF file."""
    with open_gguf(path) as f:
        return f.tensor(tensor_name).dequantize()
