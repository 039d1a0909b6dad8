"""``Tokenizer``: text <-> token ids for a GGUF model, equal to llama.cpp's tokenization."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from ..gguf_file import GGUFFile, open_gguf
from .bpe import BpeEncoder
from .detokenize import Detokenizer
from .special import SpecialTokens
from .spm import SpmEncoder
from .vocab import SPECIAL, Vocab, load_vocab


class Tokenizer:
    """The tokenizer a GGUF file describes: SentencePiece ("llama") or byte-level BPE ("gpt2").

    ``encode`` and ``decode`` follow llama.cpp's llama_tokenize and llama_detokenize.
    """

    def __init__(self, vocab: Vocab):
        self._vocab = vocab
        self._specials = SpecialTokens(vocab)
        self._encoder = SpmEncoder(vocab) if vocab.kind == "spm" else BpeEncoder(vocab)
        self._detokenizer = Detokenizer(vocab)

    @classmethod
    def from_gguf(cls, source: GGUFFile | str | os.PathLike) -> Tokenizer:
        """The tokenizer of an open GGUF file or of the file at a path."""
        if isinstance(source, GGUFFile):
            return cls.from_metadata(source.metadata)
        with open_gguf(source) as f:
            return cls.from_metadata(f.metadata)

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> Tokenizer:
        """The tokenizer described by the tokenizer.* keys of a GGUF metadata dict."""
        return cls(load_vocab(metadata))

    # --- text -> ids ------------------------------------------------------

    def encode(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of ``text``.

        add_special: add BOS / EOS where the model asks for them (add_bos / add_eos).
        parse_special: also turn control tokens written in the text (``<start_of_turn>``)
        into their ids; user-defined tokens are always matched, as in llama.cpp.
        """
        v = self._vocab
        out: list[int] = []
        if add_special and v.add_bos:
            out.append(v.ids["bos"])
        after_special = True   # SentencePiece prefixes a space at the start and after specials
        for fragment in self._specials.partition(text, parse_special):
            if isinstance(fragment, int):
                out.append(fragment)
                after_special = True
            elif v.kind == "spm":
                out.extend(self._encoder.encode(fragment, after_special))
                after_special = False
            else:
                out.extend(self._encoder.encode(fragment))
        if add_special and v.add_eos:
            out.append(v.ids["eos"])
        return out

    # --- ids -> text ------------------------------------------------------

    def decode(self, ids: Iterable[int], skip_special: bool = False) -> str:
        """The text of ``ids``; bytes are joined before decoding, invalid UTF-8 becomes U+FFFD.

        skip_special: drop control tokens, and the BOS / EOS the model adds itself
        (llama_detokenize with remove_special and without unparse_special).
        """
        data = self._detokenizer.detokenize(ids, remove_special=skip_special, unparse_special=not skip_special)
        return data.decode("utf-8", errors="replace")

    def decode_bytes(self, ids: Iterable[int], skip_special: bool = False) -> bytes:
        """Like ``decode`` but the raw bytes, for streaming output that may end mid-character."""
        return self._detokenizer.detokenize(ids, remove_special=skip_special, unparse_special=not skip_special)

    def token_to_piece(self, token_id: int) -> bytes:
        """The bytes of one token, special tokens as their text (llama.cpp's piece cache)."""
        return self._detokenizer.piece(token_id)

    # --- vocabulary -------------------------------------------------------

    @property
    def n_vocab(self) -> int:
        """Number of tokens."""
        return self._vocab.n_vocab

    @property
    def kind(self) -> str:
        """"spm" (tokenizer.ggml.model "llama") or "bpe" ("gpt2")."""
        return self._vocab.kind

    @property
    def bos_id(self) -> int | None:
        """Beginning-of-sequence id."""
        return self._vocab.ids["bos"]

    @property
    def eos_id(self) -> int | None:
        """End-of-sequence id."""
        return self._vocab.ids["eos"]

    @property
    def eot_id(self) -> int | None:
        """End-of-turn id (``<end_of_turn>``, ``<|im_end|>``, ``<|eot_id|>``), if any."""
        return self._vocab.ids["eot"]

    @property
    def eog_ids(self) -> frozenset[int]:
        """Every id that ends generation, as llama.cpp's llama_vocab_is_eog."""
        return self._vocab.eog_ids

    @property
    def add_bos(self) -> bool:
        """Whether ``encode(add_special=True)`` starts with BOS."""
        return self._vocab.add_bos

    @property
    def add_eos(self) -> bool:
        """Whether ``encode(add_special=True)`` ends with EOS."""
        return self._vocab.add_eos

    def is_special(self, token_id: int) -> bool:
        """Whether a token is a control or unknown token (hidden by ``decode(skip_special=True)``)."""
        return bool(self._vocab.attrs[self._vocab.check_id(token_id)] & SPECIAL)

    def is_eog(self, token_id: int) -> bool:
        """Whether a token ends generation."""
        return token_id in self._vocab.eog_ids

    def id_to_text(self, token_id: int) -> str:
        """A token's text as the vocabulary stores it (``▁`` for spaces, GPT-2 byte symbols)."""
        return self._vocab.tokens[self._vocab.check_id(token_id)]

    def text_to_id(self, text: str) -> int | None:
        """The id of the token whose stored text is ``text``, or None."""
        return self._vocab.token_to_id.get(text)
