"""Data: sources (hub, local files, synthetic), templates, tokenization/collation, DataModule."""

from research.data.datamodule import DataModule
from research.data.labels import check_num_labels
from research.data.readers import DataFormatError

__all__ = ["DataFormatError", "DataModule", "check_num_labels"]
