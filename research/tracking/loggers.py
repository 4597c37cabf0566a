"""Experiment loggers. W&B runs offline unless the user is logged in (or sets WANDB_MODE)."""

from __future__ import annotations

import os
from typing import Any

from pytorch_lightning.loggers import WandbLogger

WANDB_MODES = ("auto", "online", "offline", "disabled")


def wandb_mode(mode: str = "auto") -> str:
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}; allowed: {', '.join(WANDB_MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    import wandb

    return "online" if os.environ.get("WANDB_API_KEY") or wandb.api.api_key else "offline"


def wandb_logger(mode: str = "auto", tags: list[str] | None = None, **kwargs: Any) -> WandbLogger:
    """`WandbLogger` with the mode resolved; `tags` from config (a list, never None)."""
    return WandbLogger(mode=wandb_mode(mode), tags=list(tags or []), **kwargs)


def finish_wandb(failed: bool) -> None:
    """Close this job's W&B run, even on failure, so multirun jobs never merge into one run."""
    import wandb

    if wandb.run is not None:
        wandb.finish(exit_code=1 if failed else 0)
