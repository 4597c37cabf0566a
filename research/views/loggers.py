"""Experiment loggers. W&B runs offline unless the user is logged in (or sets WANDB_MODE)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from pytorch_lightning.loggers import CSVLogger, Logger, WandbLogger

from research.runs.output_dir import check_writable
from research.runs.record import RunRecord
from research.views import wandb_run

log = logging.getLogger(__name__)

WANDB_MODES = ("auto", "online", "offline", "disabled")
WANDB = "wandb"  # the W&B logger's key under `logger:` (conf/logger/wandb.yaml)


def wandb_mode(mode: str = "auto") -> str:
    if mode not in WANDB_MODES:
        raise ValueError(f"logger.wandb.mode={mode!r}; allowed: {', '.join(WANDB_MODES)}")
    if mode != "auto":
        return mode
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    import wandb

    return "online" if os.environ.get("WANDB_API_KEY") or wandb.api.api_key else "offline"


def wandb_logger(
    mode: str = "auto",
    tags: list[str] | None = None,
    save_dir: str | None = None,
    log_artifact: bool = True,
    **kwargs: Any,
) -> WandbLogger:
    """`WandbLogger` with the mode resolved; `tags` from config (a list, never None). An unwritable
    save_dir is an error here: wandb itself would quietly write to a temp dir the user never finds.
    `log_artifact` is checked here and read by `closing_wandb` (the artifact is logged as the run ends)."""
    if not isinstance(log_artifact, bool):
        raise ValueError(f"logger.wandb.log_artifact={log_artifact!r}; allowed: true, false")
    if save_dir:
        check_writable(Path(save_dir), "logger.wandb.save_dir")
    return WandbLogger(save_dir=save_dir, mode=wandb_mode(mode), tags=list(tags or []), **kwargs)


def start_loggers(
    configs: DictConfig | None, run_dir: Path, wandb_identity: Mapping[str, Any] | None = None
) -> tuple[list[Logger], str | None]:
    """Instantiate and start the configured loggers. The W&B logger gets `wandb_identity` (id, name,
    group, job_type) for each of those fields its config leaves null. A logger that cannot start (W&B: a
    bad mode, an unwritable directory, no network when online) is replaced by CSV in the run dir: the run
    goes on and the returned note (also logged, and kept in run.json) says why."""
    loggers, failures = [], []
    for name, node in (configs or {}).items():
        derived = {k: v for k, v in (wandb_identity or {}).items() if node.get(k) is None} if name == WANDB else {}
        try:
            logger = instantiate(node, **derived)
            if hasattr(type(logger), "experiment"):  # W&B starts its run here: fail now, not mid-training
                logger.experiment  # noqa: B018
            loggers.append(logger)
        except Exception as err:
            cause = err.__cause__ if isinstance(err, InstantiationException) and err.__cause__ else err
            failures.append(f"logger.{name} failed to start ({type(cause).__name__}: {cause})")
    if not failures:
        return loggers, None
    note = "; ".join(failures) + f"; logging metrics to CSV in {run_dir / 'csv'} instead"
    log.warning(note)
    if not any(isinstance(lg, CSVLogger) for lg in loggers):
        loggers.append(CSVLogger(run_dir, name="csv"))
    return loggers, note


@contextmanager
def closing_wandb(record: RunRecord, run_dir: Path, log_artifact: bool = False) -> Iterator[None]:
    """End this job's W&B run when the job ends, so multirun jobs never merge into one run: its config
    gets the record's final status, its summary the record's cost, and it ends failed (exit code 1) when
    the job raised. A completed run first logs its weights/ and run.json as a `model` artifact
    (`log_artifact`). Enter it before `record.recorded`, so the record is final when it closes."""
    import wandb

    try:
        yield
    except BaseException:
        if wandb.run is not None:
            wandb_run.finish(wandb.run, record, exit_code=1)
        raise
    if wandb.run is not None:
        if log_artifact and record.status == "completed" and "weights_dir" in record.artifacts:
            wandb_run.log_model(wandb.run, record, run_dir)
        wandb_run.finish(wandb.run, record, exit_code=0)
