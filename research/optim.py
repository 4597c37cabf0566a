"""Optimizer and learning-rate schedule from config. `optimizer` is a partial node of any
`torch.optim.Optimizer` class (torch AdamW, bitsandbytes AdamW8bit, ...); `scheduler` a partial of
`warmup_schedule`, which takes any `transformers.get_scheduler` name. Both are checked when built,
before the model loads; the loop completes them with the parameters, `method.lr` and the step count."""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
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


def check_optimizer(optimizer: functools.partial, cuda: bool) -> None:
    """Fail on a wrong class or value now, not when fit() first asks for the optimizer."""
    if not isinstance(optimizer, functools.partial) or not isinstance(optimizer.func, type):
        raise ValueError("optimizer must be a node with `_target_: <optimizer class>` and `_partial_: true`")
    if not issubclass(optimizer.func, torch.optim.Optimizer):
        raise ValueError(f"optimizer._target_={optimizer.func.__qualname__} is not a torch.optim.Optimizer")
    if any(optimizer.func.__name__.startswith(p) for p in GPU_ONLY) and not cuda:
        raise ValueError(f"optimizer._target_={optimizer.func.__name__} needs a GPU; on CPU use AdamW8bit or AdamW")
    kw = optimizer.keywords
    if "lr" in kw:
        raise ValueError("optimizer.lr: the learning rate is method.lr (each method has its own)")
    if (wd := kw.get("weight_decay", 0.0)) < 0:
        raise ValueError(f"optimizer.weight_decay={wd} must be >= 0")
    if "betas" in kw and not all(0 <= b < 1 for b in kw["betas"]):
        raise ValueError(f"optimizer.betas={list(kw['betas'])} must each be in [0, 1)")
    if (eps := kw.get("eps", 1e-8)) <= 0:
        raise ValueError(f"optimizer.eps={eps} must be > 0")


def check_scheduler(scheduler: functools.partial) -> None:
    kw = scheduler.keywords
    names = [s.value for s in SchedulerType]
    if kw.get("name", "linear") not in names:
        raise ValueError(f"scheduler.name={kw.get('name')!r}; allowed (transformers.get_scheduler): {', '.join(names)}")
    if not 0 <= kw.get("warmup_ratio", 0.0) < 1:
        raise ValueError(f"scheduler.warmup_ratio={kw['warmup_ratio']} must be in [0, 1)")
    if (steps := kw.get("warmup_steps")) is not None and steps < 0:
        raise ValueError(f"scheduler.warmup_steps={steps} must be >= 0 (or null: use warmup_ratio)")
