"""Continuing a run: `resume=auto` finds the checkpoint of the newest unfinished run of this exact config,
and a checkpoint given by hand (`ckpt_path=`) is refused when it was written under another configuration."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from research.runs import relaunch
from research.runs.checkpoints import unreadable, unsafe
from research.runs.record import VOLATILE_KEYS, config_hash, read_record

log = logging.getLogger(__name__)


def with_resume(cfg: DictConfig) -> DictConfig:
    """`resume=auto`: set ckpt_path to the last checkpoint of the newest unfinished run of this exact
    config (none: start from scratch). An explicit ckpt_path wins."""
    if cfg.resume not in (False, "auto"):
        raise ValueError(f"resume={cfg.resume!r}; allowed: false, auto (or pass ckpt_path=<file>)")
    if cfg.resume != "auto" or cfg.ckpt_path:
        return cfg
    ckpt = relaunch.resumable_checkpoint(cfg)
    if ckpt is None:
        log.info("resume=auto: no unfinished run of this config to continue; starting from scratch")
        return cfg
    log.info("resume=auto: continuing from %s", ckpt)
    cfg = cfg.copy()
    cfg.ckpt_path = str(ckpt)
    return cfg


def check_resume(cfg: DictConfig) -> None:
    """Refuse to resume a checkpoint written under another configuration, and show what changed."""
    if not cfg.ckpt_path:
        return
    ckpt = Path(cfg.ckpt_path)
    if not ckpt.is_file():
        raise FileNotFoundError(f"ckpt_path={cfg.ckpt_path!r} does not exist")
    if why := unreadable(ckpt):
        raise ValueError(f"ckpt_path={cfg.ckpt_path!r}: {why}; pass a whole one, or resume=auto to find one")
    if why := unsafe(ckpt):
        raise ValueError(f"ckpt_path={cfg.ckpt_path!r} {why}; pass a checkpoint that a run of peftlab wrote")
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
