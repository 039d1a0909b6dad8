"""SentencePiece-style tokenization ("llama" model), as llama.cpp's llm_tokenizer_spm.

Spaces become U+2581, every character starts as one symbol, and adjacent
symbols merge while their concatenation is a token, highest score first.
What is left and is not a token falls back to its UTF-8 bytes as <0xXX> tokens.
"""

from __future__ import annotations

from .merge import merge_symbols
from .vocab import Vocab, byte_text

SPACE = "\u2581"   # SentencePiece's visible space


class SpmEncoder:
    """Encodes text fragments with one vocabulary's pieces and scores."""

    def __init__(self, vocab: Vocab):
        self._token_to_id = vocab.token_to_id
        self._scores = vocab.scores
        self._add_space_prefix = vocab.add_space_prefix
        self._byte_ids = [_byte_token(vocab, b) for b in range(256)]

    def encode(self, text: str, after_special: bool) -> list[int]:
        """Ids of one text fragment; ``after_special``: it starts the input or follows a special token."""
        if self._add_space_prefix and after_special:
            text = " " + text   # llama.cpp prefixes a space only there, never mid-sequence
        pieces = merge_symbols(list(text.replace(" ", SPACE)), self._priority)
        out: list[int] = []
        for piece in pieces:
            tid = self._token_to_id.get(piece)
            if tid is not None:
                out.append(tid)
            else:
                out.extend(self._byte_id(b) for b in piece.encode("utf-8"))
        return out

    def _priority(self, left: str, right: str) -> float | None:
        tid = self._token_to_id.get(left + right)
        return None if tid is None else -self._scores[tid]

    def _byte_id(self, b: int) -> int:
        tid = self._byte_ids[b]
        if tid is None:
            raise ValueError(f"byte 0x{b:02X} has no token (no <0x{b:02X}> byte token and no unknown token)")
        return tid


def _byte_token(vocab: Vocab, b: int) -> int | None:
    """llama.cpp's byte_to_token: <0xXX>, else the raw byte as a token; we then use <unk>.

    (llama.cpp throws where neither exists; the unknown token is SentencePiece's answer.)
    """
    for text in (f"<0x{b:02X}>", byte_text(b)):
        if text in vocab.token_to_id:
            return vocab.token_to_id[text]
    return vocab.ids["unk"]
