"""Selective fine-tuning: train a chosen subset of the existing weights, inject nothing.

- `bitfit`: every parameter whose name ends in `bias` (Ben Zaken et al., 2022).
- `layers`: whole transformer blocks, listed by index (`layers`) or the last `top_k` of each stack.
- `pattern`: every parameter whose name matches a regular expression.
"""

from __future__ import annotations

import re
from collections import defaultdict

from torch import nn

from research.methods.base import FineTuneModule, unfreeze_head

MODES = ("bitfit", "layers", "pattern")
# `encoder.block.3.`, `model.layers.3.`, `transformer.h.3.`, `encoder.layer.3.`
BLOCK = re.compile(r"^(?P<stack>.*?\.(?:block|layers|layer|h))\.(?P<index>\d+)\.")


class Selective(FineTuneModule):
    def __init__(
        self,
        mode: str = "layers",
        layers: list[int] | None = None,
        top_k: int | None = 1,
        pattern: str | None = None,
        **kwargs,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"method.mode={mode!r} is unknown; allowed: {', '.join(MODES)}")
        if mode == "layers" and not layers and not (top_k and top_k > 0):
            raise ValueError("method.mode=layers needs method.layers (block indices) or method.top_k > 0")
        if mode == "pattern":
            if not pattern:
                raise ValueError("method.mode=pattern needs method.pattern (a regex over parameter names)")
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"method.pattern={pattern!r} is not a valid regex: {err}") from None
        self.mode, self.layers, self.top_k, self.pattern = mode, layers, top_k, pattern
        super().__init__(**kwargs)

    def inject(self, model: nn.Module) -> nn.Module:
        names = [n for n, _ in model.named_parameters()]
        chosen = set(self.select(names))
        if not chosen:
            raise ValueError(self._empty_reason(names))
        for name, p in model.named_parameters():
            p.requires_grad_(name in chosen)
        if self.task == "classification":
            unfreeze_head(model)
        return model

    def select(self, names: list[str]) -> list[str]:
        if self.mode == "bitfit":
            return [n for n in names if n.endswith("bias")]
        if self.mode == "pattern":
            return [n for n in names if re.search(self.pattern, n)]
        stacks: dict[str, set[int]] = defaultdict(set)
        for n in names:
            if m := BLOCK.match(n):
                stacks[m["stack"]].add(int(m["index"]))
        wanted = {
            stack: set(self.layers) if self.layers else set(sorted(idx)[-self.top_k :]) for stack, idx in stacks.items()
        }
        return [n for n in names if (m := BLOCK.match(n)) and int(m["index"]) in wanted[m["stack"]]]

    def _empty_reason(self, names: list[str]) -> str:
        if self.mode == "bitfit":
            return (
                "method.mode=bitfit selected no parameter: this model has no biases (T5 and Llama use none). "
                "Use method.mode=layers or method.mode=pattern instead."
            )
        if self.mode == "pattern":
            return f"method.pattern={self.pattern!r} matches no parameter; names look like: {names[:5]}"
        return f"method.layers={self.layers} selects no transformer block; parameter names look like: {names[:5]}"
