"""Selective fine-tuning: train a chosen subset of the existing weights, inject nothing.

- `bitfit`: every parameter whose name ends in `bias` (Ben Zaken et al., 2022).
- `layers`: whole transformer blocks, listed by index (`layers`) or the last `top_k` of each stack.
- `pattern`: every parameter whose name matches a regular expression (e.g. LayerNorm-only tuning).
"""

from __future__ import annotations

import re
from collections import defaultdict

from torch import nn
from transformers import PreTrainedModel

from research.methods.base import Context, Method
from research.models.architectures import architecture, block_index

MODES = ("bitfit", "layers", "pattern")


class Selective(Method):
    def __init__(
        self,
        name: str,
        lr: float,
        mode: str = "layers",
        layers: list[int] | None = None,
        top_k: int | None = 1,
        pattern: str | None = None,
    ) -> None:
        super().__init__(name, lr)
        if mode not in MODES:
            raise ValueError(f"method.mode={mode!r} is unknown; allowed: {', '.join(MODES)}")
        if mode == "layers" and not layers and top_k is None:
            raise ValueError("method.mode=layers needs method.top_k or a list in method.layers")
        if mode == "pattern":
            if not pattern:
                raise ValueError("method.mode=pattern needs method.pattern (a regex over parameter names)")
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"method.pattern={pattern!r} is not a valid regex: {err}") from None
        self.mode, self.layers, self.top_k, self.pattern = mode, layers, top_k, pattern

    def inject(self, model: PreTrainedModel, ctx: Context) -> nn.Module:
        names = [n for n, _ in model.named_parameters()]
        chosen = set(self.select(names, model.config.model_type))
        if not chosen:
            raise ValueError(self._empty_reason(names))
        for name, p in model.named_parameters():
            p.requires_grad_(name in chosen)
        return model

    def select(self, names: list[str], model_type: str) -> list[str]:
        if self.mode == "bitfit":
            return [n for n in names if n.endswith("bias")]
        if self.mode == "pattern":
            return [n for n in names if re.search(self.pattern, n)]
        arch = architecture(model_type, "method.mode=layers")
        stacks: dict[str, set[int]] = defaultdict(set)
        for n in names:
            if found := block_index(n, arch):
                stacks[found[0]].add(found[1])
        wanted = {s: set(self.layers) if self.layers else set(sorted(i)[-self.top_k :]) for s, i in stacks.items()}
        return [n for n in names if (found := block_index(n, arch)) and found[1] in wanted[found[0]]]

    def _empty_reason(self, names: list[str]) -> str:
        if self.mode == "bitfit":
            return (
                "method.mode=bitfit selected no parameter: this model has no biases (T5 and Llama use none). "
                "Use method.mode=layers or method.mode=pattern instead."
            )
        if self.mode == "pattern":
            return f"method.pattern={self.pattern!r} matches no parameter; names look like: {names[:5]}"
        return f"method.layers={self.layers} selects no transformer block; parameter names look like: {names[:5]}"
