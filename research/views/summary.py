"""Plain-text tables of run records, printed at the end of a run and of a multirun."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from research.runs import claims
from research.runs.record import RUN_FILE, read_record
from research.runs.relaunch import SKIP_FILE

JOB_MARKERS = (RUN_FILE, SKIP_FILE, claims.LOCK_FILE, ".hydra")  # what makes a folder of a sweep a job

HEADLINE = ("rouge1", "rouge2", "rougeL", "rougeLsum", "accuracy", "f1")


def headline_metrics(metrics: dict[str, float]) -> list[str]:
    return [m for m in HEADLINE if f"test/{m}" in metrics or f"zero_shot/{m}" in metrics]


def run_table(record: dict[str, Any]) -> str:
    m, p, t = record["metrics"], record["params"], record["timing"]
    lines = [f"{record['method']} on {record['model']} / {record['data']}: {record['status']}"]
    lines.append(f"  {'metric':<12}{'zero-shot':>11}{'fine-tuned':>12}")
    for name in headline_metrics(m):
        lines.append(f"  {name:<12}{_fmt(m.get(f'zero_shot/{name}')):>11}{_fmt(m.get(f'test/{name}')):>12}")
    if p:
        lines.append(f"  trainable {p['trainable']:,} / {p['total']:,} ({p['trainable_pct']:.2f}%)")
        if p.get("head"):  # a classifier: how much of that is the new task head, which trains under every method
            lines.append(f"  trainable without the task head {p['trainable_without_head']:,} (head {p['head']:,})")
    lines.append("  " + "  ".join(f"{k} {v:.1f}" for k, v in t.items()))
    return "\n".join(lines)


def sweep_table(jobs: dict[str, dict[str, Any]]) -> str:
    """One row per job, labelled by its folder name, which shows the values the sweep varied (2_lora_r4)."""
    records = list(jobs.values())
    names = sorted({n for r in records for n in headline_metrics(r["metrics"])}, key=HEADLINE.index)
    width = max(len("job"), *map(len, jobs)) + 2
    header = f"{'job':<{width}}{'status':<10}{'trainable %':>12}" + "".join(f"{n:>11}" for n in names)
    header += f"{'train_s':>9}"
    rows = [header, "-" * len(header)]
    for label, r in jobs.items():
        pct = r["params"].get("trainable_pct")
        row = f"{label:<{width}}{r['status']:<10}{_fmt(pct, 3):>12}"
        row += "".join(f"{_fmt(r['metrics'].get(f'test/{n}')):>11}" for n in names)
        rows.append(row + f"{_fmt(r['timing'].get('train_s'), 1):>9}")
    return "\n".join(rows)


def written(run_dir: Path) -> str:
    """The closing lines of a command that wrote a run: where its folder and its record are."""
    return f"run folder: {run_dir}\nrun record: {run_dir / RUN_FILE}"


def _job_order(run_file: Path) -> tuple[int, str]:
    """Job folders in launch order (`10_...` after `9_...`): Hydra starts each name with the job number."""
    number, _, rest = run_file.parent.name.partition("_")
    return (int(number), rest) if number.isdigit() else (-1, run_file.parent.name)


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def job_outcome(job_dir: Path) -> str:
    """completed | skipped (completed in an earlier launch) | running in another launch | failed |
    interrupted | unfinished (killed: its record still says running) | unreadable | not started."""
    if (job_dir / SKIP_FILE).exists():  # the last launch's decision: a job that runs removes it
        return "skipped"
    record = read_record(job_dir)
    if record and record["status"] == "completed":
        return "completed"
    if claims.active_holder(job_dir):
        return "running in another launch"
    if record:
        return "unfinished" if record["status"] == "running" else record["status"]
    return "unreadable" if (job_dir / RUN_FILE).exists() else "not started"


class SweepSummary(Callback):
    """Hydra callback: after a multirun, print one table of every job's run.json and exit with the number
    of jobs that did not complete (failed, interrupted, unfinished, not started, or still running in
    another launch of the same folder). Jobs catch their own errors so the others still run: this keeps a
    failure visible in the exit status."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        folders = sweep_dir.iterdir() if sweep_dir.is_dir() else []
        jobs = sorted(
            (d for d in folders if d.is_dir() and any((d / m).exists() for m in JOB_MARKERS)),
            key=lambda d: _job_order(d / RUN_FILE),
        )
        records = {d.name: r for d in jobs if (r := read_record(d))}
        if records:
            print(f"\nSweep {sweep_dir} ({len(records)} runs)\n{sweep_table(records)}")
        print(f"sweep folder: {sweep_dir}")
        outcomes = Counter(job_outcome(d) for d in jobs)
        if outcomes["skipped"]:
            print(f"{outcomes['skipped']} jobs skipped: completed in an earlier launch (see their {SKIP_FILE})")
        missing = {k: n for k, n in outcomes.items() if k not in ("completed", "skipped")}
        if missing:
            details = ", ".join(f"{n} {k}" for k, n in sorted(missing.items()))
            print(f"{sum(missing.values())} of {len(jobs)} jobs did not complete: {details}")
            sys.exit(min(sum(missing.values()), 255))
