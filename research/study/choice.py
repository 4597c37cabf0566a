"""How an arm's learning rate is chosen from its search runs: the best validation score at the first seed, and a
winning edge of the grid extended once, one half-decade beyond. Pure functions of the records, so the study
command choosing a rate and the report reading the kept runs choose the same one."""

from __future__ import annotations

from typing import Any

from research.config.fields import flatten
from research.study.spec import Arm, Study

SEARCH, SEEDS, ZERO_SHOT = "lr_search", "seeds", "zero_shot"  # folders under each arm's (zero-shot: the study's)
LADDER = sorted(m * 10.0**e for e in range(-8, 2) for m in (1, 3))  # half-decades: 1e-4, 3e-4, 1e-3, ...


def beyond(grid: tuple[float, ...], best: float) -> float | None:
    """The next half-decade past the grid's edge when the edge won (an optimum may lie beyond it), else None.
    A rate beyond the grid is never extended again: it is not on the grid."""
    low, high = min(grid), max(grid)
    if len(grid) < 2 or low < best < high or best not in grid:
        return None
    if best == high:
        return min(v for v in LADDER if v > 1.5 * best)
    return max(v for v in LADDER if v < best / 1.5)


def values(rates: list[float]) -> str:
    """A Hydra sweep over the rates (`1e-3,3e-3`), or one rate."""
    return ",".join(f"{r:g}" for r in rates)


def extension(study: Study, arm: Arm, best: float) -> float | None:
    return beyond(arm.lr, best) if study.edge == "extend_once" else None


def search_scores(study: Study, arm: Arm, records: list[dict[str, Any]]) -> dict[float, float | None]:
    """Validation score by rate of the arm's completed search runs at its first seed (`records`: the latest of each);
    None where a run has no such metric (an arm without a search needs none)."""
    first = study.seeds_of(arm)[0]
    scores: dict[float, float | None] = {}
    for record in records:
        if record["status"] == "completed" and record.get("seed") == first:
            scores[flatten(record["config"]).get("method.lr")] = record["metrics"].get(study.select_metric)
    return scores


def chosen_rate(study: Study, arm: Arm, search: list[dict[str, Any]]) -> float | None:
    """The rate of the arm's best completed search run (`search`: its records) by the validation metric, the
    rate beyond a winning edge included once it ran; ties go to the grid's order. An arm without a search has
    its one rate once its first run completed. None when nothing can be chosen yet."""
    scores = search_scores(study, arm, search)
    if not arm.searches:
        return arm.lr[0] if arm.lr[0] in scores else None
    if not (ranked := [r for r in arm.lr if scores.get(r) is not None]):
        return None
    sign = 1 if study.direction == "maximize" else -1
    best = max(ranked, key=lambda r: sign * scores[r])
    next_rate = extension(study, arm, best)
    if next_rate is not None and (beyond_score := scores.get(next_rate)) is not None:
        return next_rate if sign * beyond_score > sign * scores[best] else best
    return best
