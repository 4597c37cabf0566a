"""conf/train.yaml `speed`: switches for how a step or an evaluation is computed, never what
(docs/benchmarks.md). Free of torch, so the config check reads it before anything heavy is imported."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Speed:
    """conf/train.yaml `speed`: levers that change how a step or an evaluation is computed, never what."""

    target_logits: bool = True  # decoder-only: LM head and loss only at labelled positions
    shared_prefill: bool = True  # evaluation: one pass over the prompt gives the loss and what generation continues

    @classmethod
    def from_config(cls, node: Mapping[str, Any] | None) -> Speed:
        fields = {f.name for f in dataclasses.fields(cls)}
        for key, value in (node or {}).items():
            if key not in fields:
                raise ValueError(f"speed.{key} is not a speed switch; allowed: {', '.join(sorted(fields))}")
            if not isinstance(value, bool):
                raise ValueError(f"speed.{key}={value!r} must be true or false")
        return cls(**(node or {}))
