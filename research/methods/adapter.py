"""Bottleneck adapters (Houlsby et al., 2019; Pfeiffer et al., 2021), written here: peft has no such tuner.

An adapter maps h -> h + W_up act(W_down h) on a sublayer's output, before the block's residual add
and layer norm. W_up starts at zero, so the adapted model starts identical to the base.
- `houlsby`: after the self-attention sublayer and after the feed-forward sublayer of every block.
- `pfeiffer`: after the feed-forward sublayer only.
Parameters per adapter: 2*d*b + b + d (d = hidden size, b = bottleneck size).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from research.methods.base import FineTuneModule, positive, unfreeze_head

VARIANTS = ("houlsby", "pfeiffer")
# Module names whose output is a sublayer output, per architecture: (attention, feed-forward).
SUBLAYERS = {
    "t5": (r"block\.\d+\.layer\.0\.SelfAttention", r"block\.\d+\.layer\.\d+\.DenseReluDense"),
    "llama": (r"layers\.\d+\.self_attn", r"layers\.\d+\.mlp"),
    "gpt2": (r"h\.\d+\.attn", r"h\.\d+\.mlp"),
    "bert": (r"layer\.\d+\.attention\.output\.dense", r"layer\.\d+\.output\.dense"),
}
SUBLAYERS.update({k: SUBLAYERS["llama"] for k in ("mistral", "qwen2")})
SUBLAYERS.update({k: SUBLAYERS["bert"] for k in ("roberta",)})
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


def sublayers(model: nn.Module, variant: str) -> list[tuple[str, nn.Module]]:
    """The sublayers that get an adapter: feed-forward, and attention too for `houlsby`."""
    model_type = model.config.model_type
    if model_type not in SUBLAYERS:
        raise ValueError(f"adapters do not know model_type={model_type!r}; supported: {', '.join(SUBLAYERS)}")
    attention, feed_forward = SUBLAYERS[model_type]
    wanted = re.compile(rf"(^|\.)({feed_forward}{'|' + attention if variant == 'houlsby' else ''})$")
    return [(n, m) for n, m in model.named_modules() if wanted.search(n)]


def add_adapters(model: nn.Module, variant: str, bottleneck_size: int | None, reduction_factor: int | None) -> None:
    """Attach a zero-initialised bottleneck to each sublayer, in the model's dtype (the base is not frozen here)."""
    hidden = model.config.hidden_size
    size = bottleneck_size or max(1, hidden // reduction_factor)
    for _, module in sublayers(model, variant):
        module.adapter = Bottleneck(hidden, size).to(next(model.parameters()).dtype)
        module.register_forward_hook(_apply_adapter)


def load_adapters(model: nn.Module, directory: Path) -> nn.Module:
    """A saved `Adapter` run (`weights/`: adapter_config.json + adapter.safetensors) onto a fresh base
    of the same architecture: frozen, eval mode."""
    add_adapters(model, **json.loads((directory / CONFIG_FILE).read_text()))
    state = load_file(str(directory / ADAPTER_FILE))
    missing, unexpected = model.load_state_dict(state, strict=False)
    adapter_missing = [k for k in missing if ".adapter." in k]
    if unexpected or adapter_missing:
        raise ValueError(
            f"{directory / ADAPTER_FILE} does not fit this model: unexpected {unexpected[:5]}, "
            f"missing adapter tensors {adapter_missing[:5]}"
        )
    return model.requires_grad_(False).eval()


class Adapter(FineTuneModule):
    def __init__(
        self,
        variant: str = "houlsby",
        bottleneck_size: int | None = None,
        reduction_factor: int | None = 16,
        **kwargs,
    ) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"method.variant={variant!r} is unknown; allowed: {', '.join(VARIANTS)}")
        if bottleneck_size is None:
            positive("method.reduction_factor (or set method.bottleneck_size)", reduction_factor)
        else:
            positive("method.bottleneck_size", bottleneck_size)
        self.variant, self.bottleneck_size, self.reduction_factor = variant, bottleneck_size, reduction_factor
        super().__init__(**kwargs)

    def inject(self, model: nn.Module) -> nn.Module:
        model.requires_grad_(False)
        add_adapters(model, self.variant, self.bottleneck_size, self.reduction_factor)
        if self.task == "classification":
            unfreeze_head(model)
        return model

    def adapters(self) -> dict[str, Bottleneck]:
        return {n: m for n, m in self.model.named_modules() if isinstance(m, Bottleneck)}

    def save_weights(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {n: p.detach().cpu().contiguous() for n, p in self.model.named_parameters() if p.requires_grad}
        save_file(tensors, str(directory / ADAPTER_FILE))
        config = {
            "variant": self.variant,
            "bottleneck_size": self.bottleneck_size,
            "reduction_factor": self.reduction_factor,
        }
        (directory / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return directory

    @contextmanager
    def base_model(self) -> Iterator[nn.Module]:
        adapters = self.adapters().values()
        for a in adapters:
            a.enabled = False
        try:
            yield self.model
        finally:
            for a in adapters:
                a.enabled = True
