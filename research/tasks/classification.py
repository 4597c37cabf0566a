"""Sequence classification: an encoder and a new head over `model.num_labels` classes; a prediction is a class
index, scored by accuracy and macro-F1."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from research.tasks.base import Batch, Features, Rows, Task, Tokenizer, stock_forward

if TYPE_CHECKING:
    from research.config.speed import Speed


class Classification(Task):
    auto_class = AutoModelForSequenceClassification
    peft_task_type = "SEQ_CLS"
    generates = False
    has_head = True
    metrics = ("accuracy", "f1")

    def encode(
        self, example: Features, prompt: str, tokenizer: Tokenizer, max_source_length: int, max_target_length: int
    ) -> Features:
        ids = tokenizer(prompt, truncation=True, max_length=max_source_length)["input_ids"]
        return {"input_ids": ids, "labels": example["label"], "truncated": len(ids) >= max_source_length}

    def collate(self, features: list[Features], pad_token_id: int) -> dict[str, torch.Tensor]:
        return {"labels": torch.tensor([f["labels"] for f in features], dtype=torch.long)}

    def label_count(self, labels: torch.Tensor) -> int:
        return labels.shape[0]

    def evaluate(
        self, model: nn.Module, batch: Batch, tokenizer: Tokenizer, generation: Mapping[str, Any], speed: Speed
    ) -> Rows:
        out = stock_forward(model, batch)
        return Rows(
            inputs=tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True),
            predictions=self.predict(out.logits),
            references=batch["labels"].tolist(),
            loss=out.loss,
            count=self.label_count(batch["labels"]),
        )

    def predict(self, logits: torch.Tensor) -> list[Any]:
        """A class index per row: the most likely one."""
        return logits.argmax(-1).tolist()
