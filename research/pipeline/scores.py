"""What train and evaluate share once a run is built: what it is (for its record) and a scored split."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl

from research.methods.base import count_parameters, head_counts
from research.pipeline.building import Built


def described(built: Built, zero_shot: bool = False) -> tuple[dict[str, float], dict[str, Any]]:
    """Parameter counts (the task head's apart: `head`, `trainable_without_head`) and what the record keeps of
    the build. Zero-shot scores the base as loaded: the composed method's injected parameters are not its own."""
    model, data = built.module.model, built.datamodule
    params = (
        untrained(built.base.params) if zero_shot else count_parameters(model) | head_counts(model, built.base.heads)
    )
    artifacts: dict[str, Any] = {
        "base_fingerprint": built.base.fingerprint,
        "truncated_inputs": data.truncated,
    }
    if not zero_shot:
        artifacts["injected"] = built.module.method.describe(model)
    if data.label_names:
        artifacts["label_names"] = list(data.label_names)
    return params, artifacts


def untrained(total: int) -> dict[str, float]:
    return {"trainable": 0, "total": total, "trainable_pct": 0.0}


def test(trainer: pl.Trainer, built: Built, stage: str, split: str | None = None) -> dict[str, float]:
    """A split's scores under `stage` (`test/*`, `zero_shot/*`: the untouched base); the test split unless
    another is named."""
    module, data = built.module, built.datamodule
    with module.scoring(stage, base=stage == "zero_shot"):
        if split is None:
            return trainer.test(module, datamodule=data, verbose=False)[0]
        return trainer.test(module, dataloaders=data.loader(split, data.eval_batch_size), verbose=False)[0]
