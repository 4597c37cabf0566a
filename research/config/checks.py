"""Checks on a composed config that must fail before any model is loaded or any step is trained."""

from __future__ import annotations

import os

import torch
from omegaconf import DictConfig

from research.config.extras import require
from research.models.architectures import ARCHITECTURES


def check_extras(cfg: DictConfig) -> None:
    """The optional packages the config's choices need, each named with its extra (research/config/extras.py):
    without them a 4-bit base fails mid-build and a TensorBoard logger is replaced by CSV once the model is in."""
    if cfg.method.get("quantization") is not None:
        require("qlora", f"method={cfg.method.name} (a 4-bit base)")
    if str(cfg.optimizer.get("_target_", "")).startswith("bitsandbytes."):
        require("qlora", f"optimizer._target_={cfg.optimizer._target_}")
    for name, node in (cfg.get("logger") or {}).items():
        if str(node.get("_target_", "")).endswith(".TensorBoardLogger"):
            require("tensorboard", f"logger.{name}")


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
