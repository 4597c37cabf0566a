"""The rule of one numeric config field (its kind and range), and the one way a value is refused: naming the
field and what is allowed. Torch-free, so every rule can be checked before anything heavy is imported."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Field:
    kind: str  # "int" | "number"
    low: float | None = None
    low_open: bool = False  # True: low itself is not allowed (> low), else >= low
    high: float | None = None  # always open: < high
    nullable: bool = False

    def allowed(self) -> str:
        text = "an integer" if self.kind == "int" else "a finite number"
        if self.low is not None:
            text += f" {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            text += f" and < {self.high:g}"
        return text + (" (or null)" if self.nullable else "")

    def accepts(self, value: Any) -> bool:
        if value is None:
            return self.nullable
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.kind == "int" and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or value < self.high


def positive(kind: str = "number", nullable: bool = False) -> Field:
    return Field(kind, low=0, low_open=True, nullable=nullable)


def at_least(low: float, kind: str = "int", nullable: bool = False) -> Field:
    return Field(kind, low=low, nullable=nullable)


PROBABILITY = Field("number", low=0, high=1)


def require(name: str, value: Any, rule: Field) -> None:
    """Refuse `value` for the field `name` unless `rule` accepts it."""
    if not rule.accepts(value):
        raise ValueError(f"{name}={value!r} must be {rule.allowed()}")


def flatten(node: dict[str, Any], prefix: str = "", lists: bool = False) -> dict[str, Any]:
    """A nested config (or record) as flat dotted keys, as field rules, tables and dashboards address them.
    An empty dict is a value; a list is one value, unless `lists=True` gives each item its own key
    (`optimizer.betas.1`)."""
    flat: dict[str, Any] = {}
    items = enumerate(node) if isinstance(node, list) else node.items()
    for key, value in items:
        if (isinstance(value, dict) and value) or (lists and isinstance(value, list) and value):
            flat |= flatten(value, f"{prefix}{key}.", lists)
        else:
            flat[f"{prefix}{key}"] = value
    return flat
