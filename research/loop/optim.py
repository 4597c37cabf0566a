"""Optimizer and learning-rate schedule from config. `optimizer` is a partial node of any
`torch.optim.Optimizer` class (torch AdamW, bitsandbytes AdamW8bit, ...); `scheduler` a partial of
`warmup_schedule`, which takes any `transformers.get_scheduler` name. Both are checked when built,
before the model loads; the loop completes them with the parameters, `method.lr` and the step count.
`optimizer.head_lr` is no argument of the optimizer class: the loop's rate for a classifier's task head."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from transformers import SchedulerType, get_scheduler

GPU_ONLY = ("Paged",)  # paged optimizers page GPU state to CPU memory: meaningless on CPU


def warmup_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    name: str = "linear",
    warmup_ratio: float = 0.0,
    warmup_steps: int | None = None,
    **specific: Any,
) -> torch.optim.lr_scheduler.LRScheduler:
    """`transformers.get_scheduler(name)` with warm-up as a fraction of the run or an exact step count."""
    warmup = warmup_steps if warmup_steps is not None else math.ceil(warmup_ratio * total_steps)
    return get_scheduler(
        name, optimizer, num_warmup_steps=warmup, num_training_steps=total_steps, scheduler_specific_kwargs=specific
    )


def head_rate(node: DictConfig) -> tuple[DictConfig, float | None]:
    """The optimizer node less `head_lr`, and `head_lr`: the task head's own learning rate (None: the
    method's), which the loop gives the head as a param group of its own."""
    optimizer = OmegaConf.create(OmegaConf.to_container(node, resolve=True))
    with open_dict(optimizer):
        head_lr = optimizer.pop("head_lr", None)
    return optimizer, head_lr


def check_optimizer(optimizer: functools.partial, cuda: bool) -> None:
    """Fail on a wrong class now, not when fit() first asks for the optimizer (its numbers: schema.py)."""
    if not isinstance(optimizer, functools.partial) or not isinstance(optimizer.func, type):
        raise ValueError("optimizer must be a node with `_target_: <optimizer class>` and `_partial_: true`")
    if not issubclass(optimizer.func, torch.optim.Optimizer):
        raise ValueError(f"optimizer._target_={optimizer.func.__qualname__} is not a torch.optim.Optimizer")
    if any(optimizer.func.__name__.startswith(p) for p in GPU_ONLY) and not cuda:
        raise ValueError(f"optimizer._target_={optimizer.func.__name__} needs a GPU; on CPU use AdamW8bit or AdamW")
    if "lr" in optimizer.keywords:
        raise ValueError(
            "optimizer.lr: the learning rate is method.lr (each method has its own; a task head's: optimizer.head_lr)"
        )


def check_scheduler(scheduler: functools.partial) -> None:
    """The schedule's name; its numbers are checked with every other field (research/config/schema.py)."""
    names = [s.value for s in SchedulerType]
    if (name := scheduler.keywords.get("name", "linear")) not in names:
        raise ValueError(f"scheduler.name={name!r}; allowed (transformers.get_scheduler): {', '.join(names)}")
