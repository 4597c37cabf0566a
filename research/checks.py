"""Checks on a composed config that must fail before any model is loaded or any step is trained."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from research.models.architectures import ARCHITECTURES
from research.tracking.checkpoints import unreadable
from research.tracking.record import VOLATILE_KEYS, config_hash, read_record


def check_precision(cfg: DictConfig) -> None:
    accelerator, precision = str(cfg.trainer.accelerator), str(cfg.trainer.precision)
    cuda = torch.cuda.is_available()
    if accelerator in ("gpu", "cuda") and not cuda:
        raise ValueError(f"trainer.accelerator={accelerator} but no CUDA GPU is visible; use trainer=default (CPU)")
    if precision.startswith("bf16") and not cuda:
        raise ValueError(f"trainer.precision={precision} needs a CUDA GPU with bfloat16; on CPU use 32-true")
    fp16 = precision.startswith("16") or cfg.model.dtype == "float16"
    known = ARCHITECTURES.get(cfg.model.model_type)
    if fp16 and known and not known.fp16_safe:
        raise ValueError(
            f"float16 with T5 (model.dtype={cfg.model.dtype}, trainer.precision={precision}) overflows; "
            "use trainer.precision=bf16-mixed on a GPU, or 32-true"
        )


def check_strategy(cfg: DictConfig, multirun: bool) -> None:
    """FSDP shards over CUDA GPUs only. Lightning's DDP/FSDP launcher starts the other processes by running
    the command line again: in a multirun that would be the whole sweep, once per extra process."""
    strategy = cfg.trainer.get("strategy", "auto")
    name = str(strategy.get("_target_", "") if isinstance(strategy, DictConfig) else strategy).rsplit(".", 1)[-1]
    kind = name.lower()
    if "fsdp" in kind and not torch.cuda.is_available():
        raise ValueError(
            f"trainer.strategy={name} (trainer=fsdp) shards the model over CUDA GPUs, and none is visible; "
            "on CPU use trainer=ddp trainer.accelerator=cpu, or trainer=default"
        )
    several = cfg.trainer.get("devices", 1) not in (1, "1") or cfg.trainer.get("num_nodes", 1) != 1
    launched_outside = any(k in os.environ for k in ("LOCAL_RANK", "RANK", "SLURM_NTASKS"))  # torchrun, SLURM
    if multirun and several and ("ddp" in kind or "fsdp" in kind) and not launched_outside:
        raise ValueError(
            f"trainer.strategy={name} with trainer.devices={cfg.trainer.devices} in a multirun: Lightning would "
            "re-run the whole sweep in each extra process; run multi-device jobs one at a time, or sweep them "
            "with hydra/launcher=slurm (one SLURM task per device)"
        )


def check_resume(cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint written under another configuration, and show what changed."""
    if not cfg.ckpt_path:
        return
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path!r} does not exist")
    if why := unreadable(ckpt):
        raise ValueError(f"ckpt_path={cfg.ckpt_path!r}: {why}; pass a whole one, or resume=auto to find one")
    previous = read_record(ckpt.parent.parent)  # <run dir>/checkpoints/last.ckpt
    if previous is None:
        return
    config = OmegaConf.to_container(cfg, resolve=True)
    if config_hash(config) != previous["config_hash"]:
        diff = "; ".join(f"{k}: {a!r} -> {b!r}" for k, a, b in config_diff(previous["config"], config))
        raise ValueError(f"ckpt_path={cfg.ckpt_path!r} was written under another configuration: {diff}")


def config_diff(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    for key in sorted(set(old) | set(new)):
        if not prefix and key in VOLATILE_KEYS:
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_diff(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out
