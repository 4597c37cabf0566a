"""Runs and sweeps that are safe to re-launch.

Launching the same sweep again skips each job whose config already completed in an earlier launch (a
sibling folder of this sweep's folder, i.e. outputs/<task_name>/multiruns/*, or this very folder when
hydra.sweep.dir is given again) and re-runs failed or unfinished ones. A job that raises is recorded as
failed in its run.json and the sweep goes on; SweepSummary then exits with the number of failed jobs.
With `resume=auto`, a run (or sweep job) continues the newest unfinished run of its exact config from that
run's last checkpoint instead of starting over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from research.tracking.record import RUN_FILE, RunRecord, config_hash, read_record, write_json_atomic

log = logging.getLogger(__name__)
SKIP_FILE = "skipped.json"
CHECKPOINT = "checkpoints/last.ckpt"  # written by conf/callbacks/default.yaml
DEFAULT_OBJECTIVE = "test/loss"


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def objective(metrics: dict[str, float], cfg: DictConfig) -> float | None:
    """The value a sweeper (Optuna) optimises: the metric named by `optimized_metric`."""
    return metrics.get(cfg.get("optimized_metric") or DEFAULT_OBJECTIVE)


def earlier_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """Records of exactly this config (same config hash) from earlier launches of this task, newest
    first, each with its folder in `run_dir`: sibling run folders of a single run
    (outputs/<task>/runs/*), sibling sweep folders' jobs for a multirun job (outputs/<task>/multiruns/*/*)."""
    wanted = config_hash(OmegaConf.to_container(cfg, resolve=True))
    out_dir = Path(cfg.paths.output_dir)
    root, pattern = (out_dir.parent.parent, f"*/*/{RUN_FILE}") if is_multirun() else (out_dir.parent, f"*/{RUN_FILE}")
    found = [r | {"run_dir": str(p.parent)} for p in root.glob(pattern) if (r := read_record(p.parent))]
    same = [r for r in found if r["config_hash"] == wanted]
    return sorted(same, key=lambda r: r.get("started_at") or 0, reverse=True)


def completed_earlier(cfg: DictConfig) -> dict[str, Any] | None:
    """A completed record of exactly this config in this sweep's folder or its earlier launches."""
    return next((r for r in earlier_runs(cfg) if r["status"] == "completed"), None)


def resumable_checkpoint(cfg: DictConfig) -> Path | None:
    """`resume=auto`: the last checkpoint of the newest unfinished (killed or failed) run of this config."""
    for record in earlier_runs(cfg):
        if record["status"] == "completed":
            return None  # the newest run of this config finished: nothing to continue
        ckpt = Path(record["run_dir"]) / CHECKPOINT
        if ckpt.is_file():
            return ckpt
    return None


def run_sweep_job(cfg: DictConfig, train: Callable[[DictConfig], RunRecord]) -> float | None:
    """One multirun job: skipped if already completed, else trained with any failure kept in its run.json
    (train writes it) instead of ending the sweep. Returns the objective, None for a failed job."""
    if earlier := completed_earlier(cfg):
        log.info("skipped: this config completed in %s", earlier["run_dir"])
        note = {"status": "skipped", "completed_run": earlier["run_dir"], "config_hash": earlier["config_hash"]}
        write_json_atomic(Path(cfg.paths.output_dir) / SKIP_FILE, note)
        return objective(earlier["metrics"], cfg)
    try:
        record = train(cfg)
    except Exception:
        log.exception("job failed; the sweep goes on (see run.json)")
        return None
    return objective(record.metrics, cfg)
