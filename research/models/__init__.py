"""Base models and tokenizers: hub id, local directory, GGUF file, or built from config."""

from research.models.loading import ModelSpec, build_model, build_tokenizer

__all__ = ["ModelSpec", "build_model", "build_tokenizer"]
