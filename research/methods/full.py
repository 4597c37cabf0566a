"""Full fine-tuning: every weight trains. The reference every PEFT method is measured against."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from research.methods.base import FineTuneModule


class Full(FineTuneModule):
    def inject(self, model: nn.Module) -> nn.Module:
        return model.requires_grad_(True)

    def save_weights(self, directory: Path) -> Path:
        self.model.save_pretrained(directory)  # safetensors; loadable by plain transformers
        return directory
