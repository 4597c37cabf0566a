"""The numeric fields of the built-in methods, declared by the methods layer and checked with the rest of
the config (research/config/schema.py) before anything heavy is imported, so a wrong rank or dropout fails
in a second. Torch-free on purpose. A method of your own checks its fields in its constructor instead."""

from __future__ import annotations

from typing import Any

from research.config.fields import PROBABILITY, Field, at_least, positive

COMMON: dict[str, Field] = {"lr": positive()}  # every method's own learning rate
BY_TARGET: dict[str, dict[str, Field]] = {
    "research.methods.PeftMethod": {
        "peft_config.r": positive("int"),
        "peft_config.lora_alpha": positive(),
        "peft_config.alpha": positive(),
        "peft_config.num_virtual_tokens": positive("int"),
        "peft_config.init_r": positive("int"),
        "peft_config.target_r": positive("int"),
        "peft_config.*dropout": PROBABILITY,
    },
    "research.methods.Adapter": {
        "bottleneck_size": positive("int", nullable=True),
        "reduction_factor": positive("int", nullable=True),
    },
    "research.methods.Selective": {"top_k": positive("int", nullable=True)},
}


def method_fields(method: Any, values: dict[str, Any]) -> dict[str, Field]:
    """The rules of `method`'s fields (relative to `method.`), from its `_target_`; `values` is the flat
    config, for rules that depend on another field."""
    rules = COMMON | BY_TARGET.get(str((method or {}).get("_target_")), {})
    if str(values.get("method.peft_config._target_", "")).endswith("OFTConfig"):
        rules = rules | {"peft_config.r": at_least(0)}  # OFT's r=0: derived from oft_block_size
    return rules
