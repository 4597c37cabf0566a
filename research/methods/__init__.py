"""Fine-tuning methods: each decides what is injected and what trains, and owns its weights' lifecycle
(`base.py` states the contract). The training loop is `research/loop.py`, the same for all of them."""

from research.methods.adapter import Adapter
from research.methods.base import Context, MergeRefused, Method, count_parameters
from research.methods.full import Full
from research.methods.peft import PeftMethod
from research.methods.selective import Selective

__all__ = ["Adapter", "Context", "Full", "MergeRefused", "Method", "PeftMethod", "Selective", "count_parameters"]
