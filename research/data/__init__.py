"""Data: sources (hub, local files, synthetic), templates, tokenization/collation, DataModule."""

from research.data.datamodule import DataModule

__all__ = ["DataModule"]
