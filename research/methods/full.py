"""Full fine-tuning: every weight trains. The reference every PEFT method is measured against."""

from __future__ import annotations

from pathlib import Path

from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel

from research.methods.base import Context, Method


class Full(Method):
    def inject(self, model: PreTrainedModel, ctx: Context) -> nn.Module:
        return model.requires_grad_(True)

    def save(self, model: nn.Module, directory: Path) -> Path:
        model.save_pretrained(directory)  # safetensors shards: a plain transformers checkpoint
        return directory

    def load(self, base: PreTrainedModel, directory: Path, ctx: Context) -> nn.Module:
        """Every tensor of the saved checkpoint over the fresh base (same architecture, so strict)."""
        files = sorted(directory.glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{directory}: no safetensors weights (a method=full run saves them here)")
        state = {k: v for f in files for k, v in load_file(str(f)).items()}
        unexpected = base.load_state_dict(state, strict=False).unexpected_keys
        if unexpected:
            raise ValueError(f"{directory} holds tensors this base does not have, e.g. {sorted(unexpected)[:5]}")
        return base.requires_grad_(False).eval()
