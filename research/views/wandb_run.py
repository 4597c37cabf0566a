"""The W&B view of a run record (run.json stays the source; everything here is derived from it):

- identity: one group per sweep root (`<task_name>-<sweep root folder>`, a single run: `<task_name>`), so a
  relaunched or extended sweep stays one group; a readable, unique name; job type = method (`eval` for
  `research.evaluate`); a run that continues an unfinished run's checkpoint continues its W&B run.
- config: the resolved config as flat dotted keys, plus the record's identity (config hash, swept
  overrides, status, resumed_from, library versions, git commit) and parameter counts.
- summary: the record's cost (`cost/*`: seconds, tokens/s, memory, bytes) and parameter counts.
- artifact: weights/ and run.json as a `model` artifact, test metrics and parameter counts as metadata.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from research.config.fields import flatten
from research.runs.record import RUN_FILE, RunRecord, read_record
from research.runs.sweep_root import sweep_root

RUN_KEY = "wandb"  # record.artifacts["wandb"]: id, name, group, project of the run's W&B run
HASH_CHARS = 6  # of the config hash, in run names
NAMED_KEYS = ("method", "model", "data", "seed")  # always in the name: not repeated as swept values


def group_of(task_name: str) -> str:
    """A sweep job's group is its sweep root (research/runs/sweep_root.py), the sweep it skips and resumes
    in, not its launch folder: a launch that joins an earlier sweep (the same hydra.sweep.dir again, or the
    task's default folders outputs/<task_name>/multiruns/<time>) logs into that sweep's group."""
    root = sweep_root()
    return f"{task_name}-{root.name}" if root else task_name


def run_name(record: RunRecord, prefix: str = "") -> str:
    """method-model-data[-key=value per swept key]-seed<seed>-<config hash>: readable, and unique per config."""
    swept = record.artifacts.get("swept") or {}
    values = [f"{k.rsplit('.', 1)[-1]}={v}" for k, v in swept.items() if k not in NAMED_KEYS]
    parts = [prefix, record.method, record.model, record.data, *values, f"seed{record.seed}"]
    return "-".join([p for p in parts if p] + [record.config_hash[:HASH_CHARS]])


def continued(ckpt_path: str | None) -> dict[str, str]:
    """The W&B id, name and group of the unfinished run whose checkpoint (<run dir>/checkpoints/last.ckpt)
    this run continues, so a killed-and-resumed job is one W&B run; {} when it continues none."""
    if not ckpt_path:
        return {}
    earlier = read_record(Path(ckpt_path).parent.parent)
    if not earlier or earlier["status"] == "completed":
        return {}
    run = earlier.get("artifacts", {}).get(RUN_KEY) or {}
    return {k: run[k] for k in ("id", "name", "group") if k in run}


def identity(record: RunRecord, job_type: str, group: str, prefix: str = "") -> dict[str, str]:
    """`wandb.init` name, group and job type for this run; a run that continues an unfinished run's
    checkpoint continues its W&B run (its id, name and group). Otherwise W&B picks a new id."""
    fresh = {"name": run_name(record, prefix), "group": group}
    return fresh | continued(record.artifacts.get("resumed_from")) | {"job_type": job_type}


def trained_group(run_record: dict[str, Any]) -> str:
    """The group a trained run logged into (its task name if it had no W&B run): where its evaluations go."""
    run = run_record.get("artifacts", {}).get(RUN_KEY) or {}
    return run.get("group") or run_record["config"]["task_name"]


def recorded_run() -> dict[str, dict[str, str]]:
    """The live W&B run, for run.json ({} when none): what `continued` reads back on resume."""
    import wandb

    run = wandb.run
    return {RUN_KEY: {"id": run.id, "name": run.name, "group": run.group, "project": run.project}} if run else {}


def hyperparams(record: RunRecord) -> dict[str, Any]:
    """The run config every logger gets: the resolved config, the record's identity, parameter counts."""
    swept = record.artifacts.get("swept") or {}
    return (
        flatten(record.config)
        | {
            "config_hash": record.config_hash,
            "status": record.status,
            "resumed_from": record.artifacts.get("resumed_from"),
            "swept": ",".join(f"{k}={v}" for k, v in swept.items()),
            "overrides": record.artifacts.get("overrides"),
            "git_commit": record.git_commit,
        }
        | {f"versions.{k}": v for k, v in record.versions.items()}
        | params(record)
    )


def params(record: RunRecord) -> dict[str, float]:
    return {f"params/{k}": v for k, v in record.params.items()}


def cost(record: RunRecord) -> dict[str, float]:
    """What the run cost, as the record holds it: seconds per stage, training tokens/s, peak memory, the
    model's bytes (as loaded, float32, bfloat16) and the saved weights' bytes on disk."""
    out = {f"cost/{k}": v for k, v in (record.timing | record.memory).items()}
    if "weights_bytes" in record.artifacts:
        out["cost/weights_bytes"] = record.artifacts["weights_bytes"]
    return out | params(record)


def artifact_name(record: RunRecord) -> str:
    """One artifact per config (a rerun of the same config is a new version of it); W&B's name alphabet."""
    return re.sub(r"[^\w.-]", "_", f"{record.method}-{record.model}-{record.data}-{record.config_hash}")


def log_model(run: Any, record: RunRecord, run_dir: Path) -> None:
    """weights/ (with its model card) and run.json as a `model` artifact; offline, kept for `wandb sync`."""
    import wandb

    metadata = {
        "config_hash": record.config_hash,
        "method": record.method,
        "model": record.model,
        "data": record.data,
        "metrics": {k: v for k, v in record.metrics.items() if k.startswith("test/")},
        "params": record.params,
    }
    artifact = wandb.Artifact(artifact_name(record), type="model", metadata=metadata)
    artifact.add_dir(record.artifacts["weights_dir"], name="weights")
    artifact.add_file(str(run_dir / RUN_FILE))
    run.log_artifact(artifact)


def finish(run: Any, record: RunRecord, exit_code: int) -> None:
    """The record's final status into the config and its cost into the summary, then end the run
    (a non-zero exit code: W&B shows it failed)."""
    run.config.update({"status": record.status}, allow_val_change=True)
    run.summary.update(cost(record))
    run.finish(exit_code=exit_code)
