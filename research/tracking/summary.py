"""Plain-text tables of run records, printed at the end of a run and of a multirun."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from research.tracking.record import RUN_FILE, read_record
from research.tracking.relaunch import SKIP_FILE

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


class SweepSummary(Callback):
    """Hydra callback: after a multirun, print one table of every job's run.json, and exit with the number
    of failed jobs (jobs catch their own errors so the others still run: this keeps the failure visible)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        run_files = sorted(sweep_dir.glob(f"*/{RUN_FILE}"), key=_job_order)
        jobs = {p.parent.name: r for p in run_files if (r := read_record(p.parent))}
        records = list(jobs.values())
        if jobs:
            print(f"\nSweep {sweep_dir} ({len(jobs)} runs)\n{sweep_table(jobs)}")
        print(f"sweep folder: {sweep_dir}")
        skipped = len(list(sweep_dir.glob(f"*/{SKIP_FILE}")))
        if skipped:
            print(f"{skipped} jobs skipped: completed in an earlier launch (see their {SKIP_FILE})")
        failed = sum(r["status"] != "completed" for r in records)
        if failed:
            print(f"{failed} of {len(records)} jobs failed")
            sys.exit(min(failed, 255))
