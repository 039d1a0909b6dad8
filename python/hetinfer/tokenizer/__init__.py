"""Tokenizers read from GGUF metadata, token for token equal to llama.cpp's.

- SentencePiece style (``tokenizer.ggml.model = "llama"``: Llama 2, Gemma):
  score-ordered merges, byte fallback, the add_space_prefix rule (``spm``).
- Byte-level BPE (``"gpt2"``: Llama 3, Qwen2/3): GPT-2 byte symbols, ranked
  merges, the llama3 / qwen2 / gpt2 / default pre-tokenizers (``bpe``,
  ``pretokenize``).
- Special tokens are cut out of the text first (``special``); decoding joins
  byte pieces before it decodes UTF-8 (``detokenize``).
"""

from .core import Tokenizer

__all__ = ["Tokenizer"]
