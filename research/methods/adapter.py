"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2021), written here: peft has no such tuner.

An adapter maps h -> h + W_up act(W_down h) on a sublayer's output, before the block's residual add
and layer norm. W_up starts at zero, so the adapted model starts identical to the base.
- `houlsby`: after the self-attention sublayer and after the feed-forward sublayer of every block.
- `pfeiffer`: after the feed-forward sublayer only.
Parameters per adapter: 2*d*b + b + d (d = hidden size, b = bottleneck size).
Not mergeable: the ReLU between the two projections is not a linear map a weight matrix can absorb.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from transformers import PreTrainedModel

from research.methods.base import (
    Context,
    MergeRefused,
    Method,
    load_tensors,
    trainable_tensors,
)
from research.models.architectures import architecture

VARIANTS = ("houlsby", "pfeiffer")
ADAPTER_FILE, CONFIG_FILE = "adapter.safetensors", "adapter_config.json"


class Bottleneck(nn.Module):
    def __init__(self, hidden_size: int, bottleneck_size: int) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck_size)
        self.act = nn.ReLU()
        self.up = nn.Linear(bottleneck_size, hidden_size)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)
        self.enabled = True

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(self.act(self.down(h))) if self.enabled else h


def _apply_adapter(module: nn.Module, args: tuple, output):
    """Forward hook: pass the sublayer's output (first element if a tuple) through its adapter."""
    if isinstance(output, tuple):
        return (module.adapter(output[0]), *output[1:])
    return module.adapter(output)


class Adapter(Method):
    def __init__(
        self,
        name: str,
        lr: float,
        variant: str = "houlsby",
        bottleneck_size: int | None = None,
        reduction_factor: int | None = 16,
    ) -> None:
        super().__init__(name, lr)
        if variant not in VARIANTS:
            raise ValueError(f"method.variant={variant!r} is unknown; allowed: {', '.join(VARIANTS)}")
        if bottleneck_size is None and reduction_factor is None:
            raise ValueError("method.bottleneck_size and method.reduction_factor are both null: set one")
        self.variant, self.bottleneck_size, self.reduction_factor = variant, bottleneck_size, reduction_factor

    def sublayers(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        """The sublayers that get an adapter: feed-forward, and attention too for `houlsby`."""
        arch = architecture(model.config.model_type, "method=adapter")
        alternatives = arch.feed_forward + (f"|{arch.attention}" if self.variant == "houlsby" else "")
        wanted = re.compile(rf"(^|\.)({alternatives})$")
        return [(n, m) for n, m in model.named_modules() if wanted.search(n)]

    def add_adapters(self, model: PreTrainedModel) -> None:
        """A zero-initialised bottleneck after each sublayer, in the model's dtype."""
        hidden = model.config.hidden_size
        size = self.bottleneck_size or max(1, hidden // self.reduction_factor)
        for _, module in self.sublayers(model):
            module.adapter = Bottleneck(hidden, size).to(next(model.parameters()).dtype)
            module.register_forward_hook(_apply_adapter)

    def inject(self, model: PreTrainedModel, ctx: Context) -> nn.Module:
        model.requires_grad_(False)
        self.add_adapters(model)
        return model

    @contextmanager
    def base_model(self, model: nn.Module) -> Iterator[nn.Module]:
        adapters = [m for m in model.modules() if isinstance(m, Bottleneck)]
        for a in adapters:
            a.enabled = False
        try:
            yield model
        finally:
            for a in adapters:
                a.enabled = True

    def save(self, model: nn.Module, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        save_file(trainable_tensors(model), str(directory / ADAPTER_FILE))
        config = {"variant": self.variant, "bottleneck_size": self.bottleneck_size}
        config["reduction_factor"] = self.reduction_factor
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return directory

    def load(self, base: PreTrainedModel, directory: Path, ctx: Context) -> nn.Module:
        self.add_adapters(base)
        model = load_tensors(base, directory / ADAPTER_FILE, required=".adapter.")
        return model.requires_grad_(False).eval()

    def merge(self, model: nn.Module) -> PreTrainedModel:
        raise MergeRefused(
            f"method {self.name!r} (bottleneck adapters) puts a ReLU between its two projections after each "
            "sublayer, which no weight matrix can absorb: serve it unmerged (peftlab infer run_dir=...)"
        )
