"""A study on the W&B dashboard: one run of job type `study` in the study's group (its runs' group), holding the
headline table with the intervals and the Decided? table, so the decided comparison sits beside the runs.
Logged only where the study's runs logged to W&B, to the same project, in the mode the logger would choose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from research.compare.columns import format_value
from research.compare.report import Report
from research.views.loggers import wandb_mode
from research.views.wandb_run import RUN_KEY

JOB_TYPE = "study"


def log_study(name: str, report: Report, records: list[dict[str, Any]], save_dir: Path) -> str | None:
    """Log the tables as one `study` run; returns its id, or None when no run of the study used W&B."""
    logged = [r["artifacts"][RUN_KEY] for r in records if RUN_KEY in (r.get("artifacts") or {})]
    if not logged:
        return None
    import wandb

    save_dir.mkdir(parents=True, exist_ok=True)
    run = wandb.init(
        project=logged[0].get("project"),
        group=name,
        job_type=JOB_TYPE,
        name=f"study-{name}",
        dir=str(save_dir),
        mode=wandb_mode("auto"),
        config={"study": name, "metric": report.metric, "command": report.command},
    )
    for key, rows in (("study/arms", report.headline), ("study/decided", report.decided)):
        if rows:
            columns = list(rows[0])
            run.log({key: wandb.Table(columns=columns, data=[[format_value(c, r[c]) for c in columns] for r in rows])})
    run.finish()
    return run.id
