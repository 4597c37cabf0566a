"""Fine-tuning methods: each decides what is injected and what trains, and owns its weights' lifecycle
(`base.py` states the contract). The training loop is `research/loop/module.py`, the same for all of them.

The classes load on first use (`research.methods.PeftMethod`, as conf/method/*.yaml names them), so the
torch-free `research.methods.fields` can be read by the config checks without importing torch or peft."""

from __future__ import annotations

import importlib
from typing import Any

EXPORTS = {
    "Adapter": "research.methods.adapter",
    "Context": "research.methods.base",
    "Full": "research.methods.full",
    "Head": "research.methods.head",
    "MergeRefused": "research.methods.base",
    "Method": "research.methods.base",
    "PeftMethod": "research.methods.peft",
    "Selective": "research.methods.selective",
    "count_parameters": "research.methods.base",
}
__all__ = list(EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in EXPORTS:
        raise AttributeError(f"module 'research.methods' has no attribute {name!r}")
    return getattr(importlib.import_module(EXPORTS[name]), name)
