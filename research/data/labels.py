"""Class labels: integers, or names mapped to their index by `data.label_names`.

A file may write a label as an integer (`2`), an integer in text (`"2"`, as every CSV cell is text), or,
when `data.label_names` lists the classes in index order, a name (`"positive"`). Anything else fails
with the example's `file:line` and the labels allowed, before tokenization.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from research.data.readers import DataFormatError, json_kind

INTEGER = re.compile(r"[+-]?\d+")


def check_label_names(label_names: Sequence[str] | None) -> list[str] | None:
    """The names as a plain list; refused unless they are distinct, non-empty strings."""
    if label_names is None:
        return None
    names = list(label_names)
    if len(names) < 2 or not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"data.label_names={names} must be at least 2 distinct, non-empty strings (in index order)")
    return names


def check_num_labels(label_names: Sequence[str] | None, num_labels: int | None) -> None:
    """Call before the model is built: a head of another width than the named classes would silently
    never predict some of them, or fail on a label index past its end."""
    if label_names is None or num_labels is None or len(label_names) == num_labels:
        return
    raise ValueError(
        f"data.label_names has {len(label_names)} classes ({', '.join(label_names)}) but model.num_labels="
        f"{num_labels}; set model.num_labels={len(label_names)} or list {num_labels} names in data.label_names"
    )


class LabelMap:
    """Resolves one row's label to its class index, or says what is wrong with it and what is allowed."""

    def __init__(self, label_names: list[str] | None) -> None:
        self.names = label_names
        self.index = {name: i for i, name in enumerate(label_names or [])}

    def __call__(self, value: Any, where: str, field: str) -> int:
        if isinstance(value, str) and value in self.index:
            return self.index[value]
        if isinstance(value, str) and INTEGER.fullmatch(value.strip()):
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return self._in_range(value, where, field)
        problem = "is null" if value is None else f"is {json_kind(value)} ({value!r})"
        raise DataFormatError(f"{where}: label field {field!r} {problem}; {self._allowed()}")

    def _in_range(self, value: int, where: str, field: str) -> int:
        if value < 0:
            raise DataFormatError(
                f"{where}: label field {field!r} is {value}: labels are hidden (negative), as in GLUE's test "
                "splits; evaluate on the validation split instead (data.hub_splits.test=validation)"
            )
        if self.names is not None and value >= len(self.names):
            raise DataFormatError(f"{where}: label field {field!r} is {value}, out of range; {self._allowed()}")
        return value

    def _allowed(self) -> str:
        if self.names is None:
            return "labels are class indices 0, 1, ...; to use names, list them in data.label_names"
        return f"allowed: {', '.join(self.names)} (data.label_names) or their index 0..{len(self.names) - 1}"
