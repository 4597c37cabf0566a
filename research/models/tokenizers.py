"""Tokenizers: from the hub / a local directory, or a byte-level one built offline."""

from __future__ import annotations

from transformers import AutoTokenizer, ByT5Tokenizer, PreTrainedTokenizerBase


def byte_tokenizer() -> PreTrainedTokenizerBase:
    """ByT5-style byte tokenizer (pad=0, eos=1, unk=2, bytes from 3): needs no file, so the
    embedded tiny models run on a machine with nothing but the repository."""
    return ByT5Tokenizer(extra_ids=0)


def load_tokenizer(name_or_path: str, gguf_file: str | None = None) -> PreTrainedTokenizerBase:
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(name_or_path, **kwargs)
    if tokenizer.pad_token is None:  # Llama/GPT-2 families ship without a pad token
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
