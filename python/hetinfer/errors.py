"""Exceptions hetinfer raises for bad input."""

from __future__ import annotations

import os


class GGUFError(ValueError):
    """A GGUF file is malformed, truncated, hostile or uses something hetinfer does not support.

    Attributes: ``path`` (the file), ``offset`` (byte offset where the problem was found,
    or None when it concerns the file as a whole) and ``reason`` (what is wrong).
    """

    def __init__(self, path: str | os.PathLike, offset: int | None, reason: str):
        self.path = os.fspath(path)
        self.offset = offset
        self.reason = reason
        where = f" at offset {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {reason}")
