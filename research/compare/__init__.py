"""Compare finished runs:  python -m research.compare <sweep or run dirs ...> [--out DIR] [--metric KEY] [--also KEYS]

Reads every run.json under the given folders (recursively) and writes comparison.md, comparison.csv and
comparison.html (tables + plots embedded as base64 PNG: it opens offline, no CDN) into --out (default:
the first folder). Runs that differ only by seed are one *config*: reported as mean and std over seeds;
every config key that differs between runs gets a column. A study's kept runs (results/<study>/runs, with the
study.yaml it ran) also get the study's headline table: one row per arm at its chosen rate. run.json is the only input, so runs of
different sweeps, launches and machines compare alike; an unreadable one is listed and skipped. Where the
runs kept their predictions (predictions.jsonl), a "Decided?" table says which differences between configs
the seeds and the test sample settle (research/compare/decide.py).
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import Any

from research.compare.columns import hyper_columns
from research.compare.decide import RESAMPLES
from research.compare.decided_table import decided_section
from research.compare.plots import make_plots, pareto_front
from research.compare.records import Unreadable, latest_per_config, load_records, read_runs, run_seconds
from research.compare.report import Report, markdown_table, report_paths, write_report
from research.compare.rows import (
    FIXED_COLUMNS,
    choose_metric,
    constant_metric_note,
    failed_row,
    group_by_config,
    group_row,
    lower_is_better,
    reading_order,
    run_row,
)
from research.compare.study_table import find_study, headline
from research.runs.record import RUN_FILE
from research.study.spec import Study

__all__ = ["Report", "build_report", "compare", "load_records", "lower_is_better", "main", "pareto_front", "read_runs"]


def build_report(
    records: list[dict[str, Any]],
    metric: str | None = None,
    unreadable: Iterable[Unreadable] = (),
    also: tuple[str, ...] = (),
    decide_metric: str | None = None,
    resamples: int = RESAMPLES,
    study: tuple[Study, Path] | None = None,
) -> Report:
    seconds = [s for r in records if (s := run_seconds(r)) is not None]
    records = latest_per_config(records)
    completed = [r for r in records if r["status"] == "completed"]
    metric = metric or choose_metric(completed)
    hypers = hyper_columns([r["config"] for r in records], taken=FIXED_COLUMNS)
    order = partial(reading_order, hypers=hypers)
    configs = sorted(
        ((group_row(g, metric, hypers, also), g) for g in group_by_config(completed)), key=lambda c: order(c[0])
    )
    groups = [row for row, _ in configs]
    decided, decided_note = decided_section([g for _, g in configs], decide_metric or metric, hypers, resamples)
    headline_rows, headline_note = headline(*study, completed, resamples) if study else ([], None)
    return Report(
        metric=metric,
        runs=sorted((run_row(r, metric, hypers, also) for r in completed), key=order),
        groups=groups,
        failed=[failed_row(r, hypers) for r in records if r["status"] != "completed"],
        plots=make_plots(groups, metric, hypers),
        hypers=hypers,
        unreadable=list(unreadable),
        note=constant_metric_note(completed, metric),
        run_seconds=seconds,
        decided=decided,
        decided_note=decided_note,
        headline=headline_rows,
        headline_note=headline_note,
    )


def compare(
    dirs: list[Path],
    out: Path | None = None,
    metric: str | None = None,
    command: str | None = None,
    also: tuple[str, ...] = (),
    decide_metric: str | None = None,
    resamples: int = RESAMPLES,
) -> Report:
    if missing := [str(d) for d in dirs if not Path(d).is_dir()]:
        raise SystemExit(f"research.compare: no such folder: {', '.join(missing)}")
    records, unreadable = read_runs(dirs)
    if not records and not unreadable:
        raise SystemExit(f"research.compare: no {RUN_FILE} under {', '.join(map(str, dirs))}")
    check_metrics(records, {"--metric": [metric], "--also": list(also), "--decide-metric": [decide_metric]})
    study = find_study(list(dirs))
    if study:  # a study's kept runs: its headline metric and columns unless others are asked for
        metric, also = metric or study[0].report_metric, also or study[0].also
    report = build_report(records, metric, unreadable, also, decide_metric, resamples, study)
    report.command = command
    relative_run_dirs(report, Path(out or dirs[0]))
    try:
        write_report(report, out or dirs[0])
    except OSError as err:
        raise SystemExit(f"research.compare: cannot write the report to {out or dirs[0]}: {err}") from None
    return report


def check_metrics(records: list[dict[str, Any]], asked: dict[str, list[str | None]]) -> None:
    """A metric asked for that no completed run has would make empty columns and a report that looks
    fine: refused, naming the metrics the runs have and the closest."""
    present = sorted({k for r in records if r["status"] == "completed" for k in r["metrics"]})
    problems = []
    for option, keys in asked.items():
        for key in (k for k in keys if k and present and k not in present):
            close = difflib.get_close_matches(key, present, n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"{option} {key} is not a metric of these runs{hint}")
    if problems:
        raise SystemExit(f"research.compare: {'; '.join(problems)}; they have: {', '.join(present)}")


def relative_run_dirs(report: Report, out: Path) -> None:
    """Each row's run folder as a path from the report's own folder: a committed report names no folder of
    the machine that wrote it, and still leads to the runs beside it."""
    for row in (*report.runs, *report.failed):
        row["run_dir"] = os.path.relpath(Path(row["run_dir"]).resolve(), out.resolve())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m research.compare", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run folders, searched recursively")
    parser.add_argument("--out", type=Path, help="where the three files go (default: the first folder)")
    parser.add_argument("--metric", help="headline metric key, e.g. test/rougeL (default: by task)")
    parser.add_argument(
        "--also",
        default="",
        help="more metric columns, comma-separated, e.g. test/rouge2,test/bleu (mean and std per config)",
    )
    parser.add_argument(
        "--decide-metric", help="the metric of the Decided? table, e.g. test/rouge2 (default: the headline metric)"
    )
    parser.add_argument(
        "--resamples", type=int, default=RESAMPLES, help=f"bootstrap resamples of the Decided? table ({RESAMPLES})"
    )
    args = parser.parse_args(argv)
    if args.resamples < 1:
        parser.error(f"--resamples {args.resamples}: must be at least 1")
    also = tuple(key for key in args.also.split(",") if key)
    command = "peftlab compare " + " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    report = compare(args.dirs, args.out, args.metric, command, also, args.decide_metric, args.resamples)
    print(markdown_table(report.sections()[0][1]))
    counts = f"{len(report.runs)} completed, {len(report.failed)} failed/unfinished"
    print(counts + (f", {len(report.unreadable)} unreadable (skipped)" if report.unreadable else ""))
    if report.note:
        print(f"note: {report.note}")
    print("wrote:")
    for path in report_paths(args.out or args.dirs[0]):
        print(shown(path))


def shown(path: Path) -> str:
    """The path relative to the working directory when it is under it, else absolute."""
    path = path.resolve()
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
