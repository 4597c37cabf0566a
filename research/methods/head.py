"""Head-only training: the task head (a classifier's new layer, and BERT's pooler, as the architecture table
says) trains and every weight of the base stays frozen. The arm a methods table needs beside the others:
every method trains that head too, so a method is worth only what it adds over this."""

from __future__ import annotations

from torch import nn
from transformers import PreTrainedModel

from research.methods.base import Context, Method


class Head(Method):
    needs_head = True

    def inject(self, model: PreTrainedModel, ctx: Context) -> nn.Module:
        """Freeze the base; the pipeline then makes `ctx.heads` trainable, as it does for every method."""
        if not ctx.heads:
            raise ValueError(
                f"method={self.name} trains only the task head, and this {model.config.model_type} model has no "
                "module the architecture table (research/models/architectures.py, `heads`) names as one"
            )
        return model.requires_grad_(False)
