"""The report's "Decided?" table: each config (an arm: runs that differ only by seed) as mean ± std over seeds with
a 95% interval, and its difference from the best arm and from full fine-tuning, decided or not
(research/compare/decide.py). Its input is the runs' per-example scores in predictions.jsonl, paired by example id;
where they cannot be had, the table is left out and one line says why."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from research.compare.columns import Hyper, format_value
from research.compare.decide import RESAMPLES, ArmSummary, decide
from research.compare.records import ZERO_SHOT
from research.compare.rows import Group, hyper_cells, lower_is_better
from research.runs.predictions import FILE, predictions_path, read_predictions

FULL = "full"  # the method name of full fine-tuning: a reference arm when present
Scores = dict[int, tuple[float, Any]]  # example id -> (score, references)


class Undecidable(ValueError):
    """Why the per-example scores cannot be compared; the report prints the message in place of the table."""


def decided_section(
    groups: list[Group], metric: str, hypers: list[Hyper], resamples: int = RESAMPLES
) -> tuple[list[dict[str, Any]], str]:
    """The table's rows and the line above them (how the intervals were made), or no rows and why not."""
    try:
        arms, examples = paired_scores(groups, metric)
    except Undecidable as why:
        return [], f"No table: {why}."
    labels = arm_labels(groups, hypers)
    named = {labels[i]: scores for i, scores in arms.items()}
    means = {name: float(scores.mean()) for name, scores in named.items()}
    pick = min if lower_is_better(metric) else max
    references = {"best": pick(means, key=means.__getitem__)}
    full = [labels[i] for i in arms if groups[i].first["method"] == FULL]
    if full and (best_full := pick(full, key=means.__getitem__)) != references["best"]:
        references[FULL] = best_full
    summaries = decide(named, references, resamples)
    rows = [row(name, metric, len(named[name]), summary, references) for name, summary in summaries.items()]
    line = (
        f"`{metric}` per example on the {examples} examples every run scored, paired across arms; 95% intervals "
        f"from {resamples:,} bootstrap resamples of each arm's seeds, then of the examples (the same for every "
        "arm); decided: the difference's interval excludes 0."
    )
    return rows, line


def paired_scores(groups: list[Group], metric: str) -> tuple[dict[int, np.ndarray], int]:
    """Each group's (seeds, examples) scores on the examples every run scored, by group index, and their
    number. Groups without `metric` (a zero-shot evaluation of another split) are no arm."""
    stage, _, key = metric.partition("/")
    compared = {i: g for i, g in enumerate(groups) if all(metric in r["metrics"] for r in g.runs)}
    runs = [r for g in compared.values() for r in g.runs]
    if not runs:
        raise Undecidable(f"no completed run has `{metric}`")
    scores = {r["run_dir"]: run_scores(r, stage, key) for r in runs}
    if missing := [d for d, s in scores.items() if s is None]:
        raise Undecidable(f"{len(missing)} of {len(runs)} runs have no {FILE} with `{stage}` rows, e.g. {missing[0]}")
    if empty := [d for d, s in scores.items() if not s]:
        raise Undecidable(f"`{key}` has no per-example score in {FILE} (macro-F1 and loss have none), e.g. {empty[0]}")
    ids = sorted(set.intersection(*(set(s) for s in scores.values())))
    if not ids:
        raise Undecidable("the runs scored no example in common")
    reference = next(iter(scores.values()))
    for run_dir, each in scores.items():
        if (differs := next((i for i in ids if each[i][1] != reference[i][1]), None)) is not None:
            raise Undecidable(f"the runs scored different examples: id {differs} has other references in {run_dir}")
    arms = {i: np.array([[scores[r["run_dir"]][e][0] for e in ids] for r in g.runs]) for i, g in compared.items()}
    return arms, len(ids)


def run_scores(record: dict[str, Any], stage: str, key: str) -> Scores | None:
    """A run's `key` score and references by example id; None when it kept no rows of its stage (a zero-shot
    evaluation's rows are its `zero_shot` stage), {} when its rows have no such score."""
    run_dir = Path(record["run_dir"])
    try:
        rows = read_predictions(run_dir, ZERO_SHOT if record["method"] == ZERO_SHOT else stage)
        scores = {row["id"]: (row["scores"][key], row["references"]) for row in rows if key in row["scores"]}
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:  # truncated, not JSON, not its rows
        raise Undecidable(f"{predictions_path(run_dir)} cannot be read ({type(err).__name__}: {err})") from None
    return scores if rows else None


def arm_labels(groups: list[Group], hypers: list[Hyper]) -> dict[int, str]:
    """A config's method, its model where the configs have several, and the values that tell it from the other
    configs of its method (`lora r=4`, `lora r=16`); a label two configs would share gets their position."""
    methods = [g.first["method"] for g in groups]
    cells = [{k: format_value(k, v) for k, v in hyper_cells(g.first, hypers).items()} for g in groups]
    values: dict[tuple[str, str], set[str]] = defaultdict(set)  # (method, column) -> the method's values
    for method, cell in zip(methods, cells, strict=True):
        for column, value in cell.items():
            values[method, column].add(value)
    telling = [h.name for h in hypers if any(len(v) > 1 for (_, column), v in values.items() if column == h.name)]
    models = len({g.first["model"] for g in groups}) > 1
    labels: dict[int, str] = {}
    for i, g in enumerate(groups):
        shown = [f"{k}={cells[i][k]}" for k in telling if cells[i][k]]
        label = " ".join([methods[i], *([g.first["model"]] if models else []), *shown])
        labels[i] = f"{label} #{i + 1}" if label in labels.values() else label
    return labels


def row(name: str, metric: str, seeds: int, summary: ArmSummary, references: dict[str, str]) -> dict[str, Any]:
    """One arm's cells, written here: a mean with its spread and an interval are one cell each."""
    spread = f" ± {summary.std:.4f}" if summary.std is not None else ""
    cells: dict[str, Any] = {
        "arm": name,
        "metric": metric,
        "seeds": seeds,
        "mean ± std": f"{summary.mean:.4f}{spread}",
        "95% CI": span(summary.low, summary.high),
    }
    for role in references:
        versus = summary.versus.get(role)  # none for the reference arm itself
        cells[f"vs {role}"] = f"{versus.value:+.4f}" if versus else f"({role})"
        cells[f"vs {role} 95% CI"] = span(versus.low, versus.high) if versus else ""
        cells[f"vs {role}: decided?"] = versus.verdict if versus else ""
    return cells


def span(low: float, high: float) -> str:
    return f"[{low:.4f}, {high:.4f}]"
