"""Encoder-decoder generation: the encoder reads the prompt, the decoder writes the target."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSeq2SeqLM

from research.loop.lm_loss import prompt_learning
from research.loop.prefill import Pass, encode_once
from research.tasks.base import Batch, Features, Tokenizer
from research.tasks.generative import Generative


class Seq2Seq(Generative):
    auto_class = AutoModelForSeq2SeqLM
    peft_task_type = "SEQ_2_SEQ_LM"
    prompt_keys = ("input_ids", "attention_mask")

    def encode(
        self, example: Features, prompt: str, tokenizer: Tokenizer, max_source_length: int, max_target_length: int
    ) -> Features:
        ids = self.prompt_ids(tokenizer, prompt, max_source_length)
        labels = tokenizer(text_target=example["target"], truncation=True, max_length=max_target_length)["input_ids"]
        return {"input_ids": ids, "labels": labels, "truncated": len(ids) >= max_source_length}

    def one_pass(self, model: nn.Module, batch: Batch, generation: Mapping[str, Any]) -> Pass | None:
        """The encoder runs once for the loss and for generation; not under peft prompt learning, whose
        virtual tokens are added inside peft's own forward."""
        if prompt_learning(model):
            return None
        loss, encoded = encode_once(model, batch)
        return loss, self.label_count(batch["labels"]), encoded

    def passage(
        self, tokenizer: Tokenizer, enc: Batch, labels: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The decoder writes the passage from an empty source."""
        source = tokenizer([""] * len(labels), return_tensors="pt").to(labels.device)
        return {"input_ids": source["input_ids"], "attention_mask": source["attention_mask"]}, labels
