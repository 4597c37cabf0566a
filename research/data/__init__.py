"""Data: sources (hub, local files, synthetic), templates, tokenization/collation, DataModule."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from transformers import PreTrainedTokenizerBase

from research.config import build_node
from research.data.datamodule import DataModule
from research.data.labels import check_num_labels
from research.data.readers import DataFormatError

__all__ = ["DataFormatError", "DataModule", "build_data", "check_num_labels"]


def build_data(node: DictConfig, spec: Any, tokenizer: PreTrainedTokenizerBase) -> DataModule:
    """The DataModule that `node` (conf/data) names, for the model `spec` (a ModelSpec): the one way a run,
    a served run and a benchmark build their data, not yet set up."""
    return build_node(node, tokenizer=tokenizer, task=spec.task, chat_template=spec.chat_template)
