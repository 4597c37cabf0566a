"""Runs and sweeps that are safe to re-launch.

Launching the same sweep again skips each job whose config already completed in it and re-runs failed,
interrupted or unfinished ones. "The same sweep" is the sweep root recorded in each job's run.json
(research/runs/sweep_root.py): the launches of a task into its default timestamped folders
(outputs/<task_name>/multiruns/*), or one folder named by hydra.sweep.dir launched into again; never an
unrelated sweep that merely sits in a neighbouring folder. Each job first claims its folder
(research/runs/claims.py), so a concurrent launch of the same sweep folder leaves a job of the same config
being run to the process running it, while a job of another config runs in a folder of its own. A job that
raises is recorded as failed in its run.json and the sweep goes on; one stopped by SIGTERM/SIGINT is
recorded as interrupted and the jobs after it do not start. SweepSummary then prints the table and exits
with the number of jobs that did not complete.
With `resume=auto`, a run (or sweep job) continues the newest unfinished run of its exact config from that
run's last readable checkpoint instead of starting over.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from research.runs import claims
from research.runs.interrupts import Interrupted
from research.runs.record import RUN_FILE, RunRecord, config_hash, read_record, write_json_atomic
from research.runs.sweep_root import is_multirun, sweep_root  # noqa: F401  train.py asks relaunch.is_multirun()

log = logging.getLogger(__name__)
SKIP_FILE = "skipped.json"
CHECKPOINT = "checkpoints/last.ckpt"  # written by conf/callbacks/default.yaml
DEFAULT_OBJECTIVE = "test/loss"
_stopped_by: str | None = None  # the signal that stopped a job of this sweep: the jobs after it do not start


def objective(metrics: dict[str, float], cfg: DictConfig) -> float | None:
    """The value a sweeper (Optuna) optimises: the metric named by `optimized_metric`."""
    return metrics.get(cfg.get("optimized_metric") or DEFAULT_OBJECTIVE)


def hash_of(cfg: DictConfig) -> str:
    """The config hash a run of `cfg` records (run.json `config_hash`)."""
    return config_hash(OmegaConf.to_container(cfg, resolve=True))


def earlier_runs(cfg: DictConfig) -> list[dict[str, Any]]:
    """Records of exactly this config (same config hash) from earlier launches, newest first, each with its
    folder in `run_dir`: for a single run, its sibling run folders (outputs/<task>/runs/*); for a multirun
    job, the jobs of the same sweep root. Unreadable records are skipped (read_record warns)."""
    wanted = hash_of(cfg)
    out_dir = Path(cfg.paths.output_dir)
    root = sweep_root()
    if root is None:
        search, depth = out_dir.parent, 1
    elif (job_dir := out_dir.resolve()).is_relative_to(root):
        search, depth = root, len(job_dir.relative_to(root).parts)
    else:
        return []  # paths.output_dir moved out of the sweep folder: no other job of the sweep to be found
    found = [
        r | {"run_dir": str(p.parent)}
        for p in search.glob("*/" * depth + RUN_FILE)
        if (r := read_record(p.parent)) and r["config_hash"] == wanted
    ]
    same = [r for r in found if r.get("sweep_root") == (str(root) if root else None)]
    return sorted(same, key=lambda r: r.get("started_at") or 0, reverse=True)


def completed_earlier(cfg: DictConfig) -> dict[str, Any] | None:
    """A completed record of exactly this config in this sweep (this folder or an earlier launch of it)."""
    return next((r for r in earlier_runs(cfg) if r["status"] == "completed"), None)


def process_rank() -> int:
    """The process's global rank, read from the environment as Lightning reads it (RANK under torchrun,
    SLURM_PROCID under SLURM), without importing Lightning: this module loads before the config is checked."""
    for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"):
        if key in os.environ:
            return int(os.environ[key])
    return 0


def resumable_checkpoint(cfg: DictConfig) -> Path | None:
    """`resume=auto`: the last checkpoint of the newest unfinished (killed, failed, interrupted) run of this
    config. A checkpoint that is not whole (a full disk, a copy cut short) is skipped with a warning that
    names it, and the next older unfinished run is tried."""
    for record in earlier_runs(cfg):
        if record["status"] == "completed":
            return None  # the newest run of this config finished: nothing to continue
        ckpt = Path(record["run_dir"]) / CHECKPOINT
        if not ckpt.is_file():
            continue
        from research.runs.checkpoints import unreadable  # Lightning: imported once a run is under way

        if why := unreadable(ckpt):
            log.warning("resume=auto: skipping %s: %s", ckpt, why)
            continue
        return ckpt
    return None


def run_sweep_job(cfg: DictConfig, train: Callable[[DictConfig], RunRecord]) -> float | None:
    """One multirun job: not started after a stop signal; left alone while another launch of this config
    holds its folder; skipped if already completed in this sweep; else trained with any failure kept in its
    run.json (train writes it) instead of ending the sweep. Returns the objective, None for a job that did
    not complete."""
    global _stopped_by
    if _stopped_by:
        log.warning("not started: the sweep was stopped by %s", _stopped_by)
        return None
    try:
        with claimed_folder(cfg) as holder:
            if holder is not None:
                job_dir = Path(cfg.paths.output_dir)
                log.warning(
                    "skipped: %s is being run by another launch: %s",
                    job_dir,
                    holder.describe(job_dir / claims.LOCK_FILE),
                )
                return None
            return _run_unless_completed(cfg, train)
    except Interrupted as stop:
        _stopped_by = stop.name
        log.warning("the sweep was stopped by %s: the jobs after this one will not start", stop.name)
        return None
    except Exception:
        log.exception("job failed; the sweep goes on (see run.json)")
        return None


@contextmanager
def claimed_folder(cfg: DictConfig) -> Iterator[claims.Holder | None]:
    """Claim the job's folder for the body: yields None when this launch holds it, else the live holder, a
    launch of this same config. Hydra's folder taken by another config (its run recorded there, or its
    claim: a launch with other values into the same sweep folder gets the same job names) is not this job's:
    the job moves to its own folder (`own_folder`) and claims that, so no config is skipped for another's."""
    with _claim(cfg) as holder:
        if (taken := _taken_by_another(cfg, holder)) is None:
            yield holder
            return
    own_folder(cfg, taken)
    with _claim(cfg) as holder:
        yield holder


def _claim(cfg: DictConfig) -> AbstractContextManager[claims.Holder | None]:
    """Rank 0 claims: the other processes of a multi-process (SLURM) job run in the folder it holds, and take
    only another config's live claim for a holder, as rank 0 does."""
    job_dir, wanted = Path(cfg.paths.output_dir), hash_of(cfg)
    if process_rank() == 0:
        return claims.claimed(job_dir, wanted)
    held = claims.active_holder(job_dir)
    return nullcontext(None if held is None or held.config_hash == wanted else held)


def _taken_by_another(cfg: DictConfig, holder: claims.Holder | None) -> str | None:
    """Why the job's folder is another config's (None: it is this config's to run in): `holder`, the live
    claim found on it, runs another (or an unknown) config, or the folder holds another config's run."""
    job_dir = Path(cfg.paths.output_dir)
    if holder is not None and holder.config_hash != hash_of(cfg):
        return f"is claimed by a launch of another config: {holder.describe(job_dir / claims.LOCK_FILE)}"
    if holder is None and (there := other_run(cfg)):
        return f"holds another config's run ({there['status']})"
    return None


def record_here(cfg: DictConfig) -> tuple[dict[str, Any] | None, bool]:
    """The record in the run's output folder (None: none there), and whether it is a run of this config."""
    there = read_record(Path(cfg.paths.output_dir))
    return there, there is not None and there["config_hash"] == hash_of(cfg)


def other_run(cfg: DictConfig) -> dict[str, Any] | None:
    """The record in the run's output folder when it is another config's run (None: empty, or this config)."""
    there, same = record_here(cfg)
    return None if same else there


def own_folder(cfg: DictConfig, why: str) -> None:
    """Point the job at a folder of its own, Hydra's being another config's (`why`). A later launch into the
    same sweep folder with other values gets job numbers from 0 again, and a value given once names no
    folder (sweep_names.py), so its `0_full` can be an earlier (or a concurrent) launch's `0_full`: the new
    job then runs in `0_full_<its config hash>` beside it (the same folder on every re-launch, so it resumes
    there), and the other run is kept whole."""
    job_dir = Path(cfg.paths.output_dir)
    own = job_dir.with_name(f"{job_dir.name}_{hash_of(cfg)}")
    log.warning("%s %s: this job runs in %s", job_dir, why, own)
    cfg.paths.output_dir = str(own)


def completed_here(cfg: DictConfig) -> dict[str, Any] | None:
    """The record in the run's output folder when it is this config's completed run (`hydra.run.dir` given a
    finished run again): it is left as it is unless `overwrite=true`."""
    there, same = record_here(cfg)
    return there if same and there["status"] == "completed" and not cfg.get("overwrite") else None


def refuse_other_run(cfg: DictConfig) -> None:
    """A single run stops before any model loads when the folder it was given (hydra.run.dir) holds another
    config's run: it would write over that run's record, checkpoints and weights. The same config there is
    this run's own folder: resume=auto continues it when unfinished; completed, it is left as it is
    (`completed_here`) unless overwrite=true."""
    if there := other_run(cfg):
        raise ValueError(
            f"paths.output_dir={cfg.paths.output_dir!r} (hydra.run.dir) holds another config's run "
            f"({there['status']}, config_hash {there['config_hash']}, method {there['method']}); "
            "give this run a new folder"
        )


def _run_unless_completed(cfg: DictConfig, train: Callable[[DictConfig], RunRecord]) -> float | None:
    if earlier := completed_earlier(cfg):
        log.info("skipped: this config completed in %s (sweep %s)", earlier["run_dir"], earlier["sweep_root"])
        note = {"status": "skipped", "completed_run": earlier["run_dir"], "config_hash": earlier["config_hash"]}
        write_json_atomic(Path(cfg.paths.output_dir) / SKIP_FILE, note)
        return objective(earlier["metrics"], cfg)
    (Path(cfg.paths.output_dir) / SKIP_FILE).unlink(missing_ok=True)  # an earlier launch's, now out of date
    return objective(train(cfg).metrics, cfg)
