"""A study's headline table: one row per arm at the rate its search chose, with the headline metric's mean ± std
over seeds, its 95% interval, and its difference from the best arm and from full fine-tuning, decided or not.

It is made from the kept records alone (results/<study>/runs: the as-ran study.yaml and each run's run.json and
predictions), so `peftlab compare results/<study>/runs --out results/<study>` writes it again exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from research.compare.decide import RESAMPLES, decide
from research.compare.decided_table import FULL, Undecidable, paired_scores, span
from research.compare.records import is_number
from research.compare.rows import Group, lower_is_better, mean_std, weights_mb
from research.config.fields import flatten
from research.study.choice import SEARCH, ZERO_SHOT, chosen_rate
from research.study.spec import Arm, Study, load

STUDY_FILE = "study.yaml"  # the study as it ran, kept at the top of its runs folder
Row = dict[str, Any]


def find_study(dirs: list[Path]) -> tuple[Study, Path] | None:
    """The study kept in one of the folders compared, and that folder (its arms are its sub-folders)."""
    for folder in dirs:
        if (folder / STUDY_FILE).is_file():
            return load(str(folder / STUDY_FILE)), Path(folder)
    return None


def under(record: dict[str, Any], folder: Path) -> bool:
    return Path(record["run_dir"]).resolve().is_relative_to(folder.resolve())


def arm_runs(study: Study, arm: Arm, root: Path, completed: list[dict[str, Any]]) -> tuple[float | None, list]:
    """The arm's chosen rate and its completed runs at that rate, one per seed of the study."""
    mine = [r for r in completed if under(r, root / arm.name)]
    if arm.command:
        return None, mine
    rate = chosen_rate(study, arm, [r for r in mine if under(r, root / arm.name / SEARCH)])
    seeds = study.seeds_of(arm)
    runs = [r for r in mine if flatten(r["config"]).get("method.lr") == rate and r.get("seed") in seeds]
    return rate, sorted(runs, key=lambda r: seeds.index(r["seed"]))


def headline(study: Study, root: Path, completed: list[dict[str, Any]], resamples: int = RESAMPLES) -> tuple:
    """The table's rows and the line above them (what the intervals are, or why there are none)."""
    metric = study.report_metric
    arms: dict[str, tuple[str, list]] = {}  # label -> (arm name, runs)
    for arm in study.arms:
        rate, runs = arm_runs(study, arm, root, completed)
        if runs:
            arms[f"{arm.name} (lr {rate:g})" if rate is not None else arm.name] = (arm.name, runs)
    if zero_shot := [r for r in completed if under(r, root / ZERO_SHOT)]:
        arms[ZERO_SHOT] = (ZERO_SHOT, zero_shot[:1])
    scored = {label: entry for label, entry in arms.items() if all(metric in r["metrics"] for r in entry[1])}
    summaries, references, note = {}, {}, ""
    try:
        groups = [Group(label, runs) for label, (_, runs) in scored.items()]
        per_arm, examples = paired_scores(groups, metric)
        named = {groups[i].key: scores for i, scores in per_arm.items()}
        references = reference_arms(named, {label: scored[label][1] for label in named}, metric)
        summaries = decide(named, references, resamples)
        note = (
            f"`{metric}` on the {examples} test examples every arm scored, paired; 95% intervals from {resamples:,} "
            "bootstrap resamples of each arm's seeds and of the examples; decided: the interval of the difference "
            "excludes 0."
        )
    except Undecidable as why:
        note = f"No intervals: {why}."
    rows = [
        arm_row(label, runs, metric, study.also, summaries.get(label), references) for label, (_, runs) in arms.items()
    ]
    return rows, note


def reference_arms(scores: dict[str, Any], runs: dict[str, list], metric: str) -> dict[str, str]:
    """The best arm by mean, and the best full fine-tuning arm when it is another one."""
    pick = min if lower_is_better(metric) else max
    means = {label: float(s.mean()) for label, s in scores.items()}
    references = {"best": pick(means, key=means.__getitem__)}
    full = [label for label in scores if runs[label][0]["method"] == FULL]
    if full and (best_full := pick(full, key=means.__getitem__)) != references["best"]:
        references[FULL] = best_full
    return references


def arm_row(label: str, runs: list, metric: str, also: tuple[str, ...], summary: Any, references: dict) -> Row:
    """About ten cells: what the arm trains, its headline with interval and verdicts, its cost, other metrics."""
    first = runs[0]
    mean, std = mean_std([r["metrics"][metric] for r in runs if is_number(r["metrics"].get(metric))])
    row: Row = {
        "arm": label,
        "trainable %": trainable_cell(first["params"]),
        f"{metric} (mean ± std, seeds)": cell(mean, std, len(runs)),
        "95% CI": span(summary.low, summary.high) if summary else "",
    }
    for role in ("best", FULL):
        versus = summary.versus.get(role) if summary else None
        row[f"vs {role}"] = verdict(versus) if versus else f"({role})" if references.get(role) == label else ""
    row["train s"] = mean_std([t for r in runs if is_number(t := r["timing"].get("train_s"))])[0]
    row["peak RSS MB"] = mean_std([m for r in runs if is_number(m := r["memory"].get("peak_rss_mb"))])[0]
    row["weights MB"] = weights_mb(first)
    others = [(k, mean_std([r["metrics"][k] for r in runs if is_number(r["metrics"].get(k))])[0]) for k in also]
    row["other metrics (mean)"] = "; ".join(f"{k} {v:.4f}" for k, v in others if v is not None)
    return row


def trainable_cell(params: dict[str, Any]) -> str:
    """The trainable share, and without a classifier's new head where the run has one: the head trains beside
    every method, so the share without it is the method's own."""
    share, total = params.get("trainable_pct"), params.get("total")
    if not is_number(share):
        return ""
    without = params.get("trainable_without_head")
    if params.get("head") and is_number(without) and total:
        return f"{share:.3g} ({100 * without / total:.3g} without the head)"
    return f"{share:.3g}"


def cell(mean: float | None, std: float | None, seeds: int) -> str:
    if mean is None:
        return ""
    return f"{mean:.4f}" + (f" ± {std:.4f}" if std is not None else "") + f" ({seeds})"


def verdict(difference: Any) -> str:
    return f"{difference.value:+.4f} {span(difference.low, difference.high)} {difference.verdict}"
