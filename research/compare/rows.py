"""Table rows: one per completed run, one per config (runs that differ only by seed, as mean and std),
one per failed or unfinished run. Values stay raw here; columns.format_value writes them."""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from research.compare.columns import Hyper, comparable, config_key, format_value, hyper_value
from research.compare.records import is_number

# Headline metric by task: the first one present in the completed runs' metrics wins.
AUTO_METRICS = ("test/rouge1", "test/accuracy", "test/loss")
# Column names of the rows below: no hyperparameter column may take one of them.
FIXED_COLUMNS = {
    "method",
    "model",
    "data",
    "seed",
    "seeds",
    "total_params",
    "trainable",
    "trainable_without_head",
    "trainable_pct",
    "train_s",
    "peak_rss_mb",
    "weights_mb",
    "status",
    "error",
    "run_dir",
}
HIDDEN_MODEL = "_model"  # group-row key naming the base model (name + architecture), used by plots only
HIDDEN_ZERO_SHOT = "_zero_shot"  # group-row key: the base model's score before training, for plots only


@dataclass
class Group:
    """Completed runs of one config (all keys equal but the seed)."""

    key: str
    runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def first(self) -> dict[str, Any]:
        return self.runs[0]

    def values(self, get: Callable[[dict[str, Any]], float | None]) -> list[float]:
        return [v for r in self.runs if (v := get(r)) is not None]


def choose_metric(records: list[dict[str, Any]]) -> str:
    present = {k for r in records for k in r["metrics"]}
    return next((m for m in AUTO_METRICS if m in present), "test/loss")


def lower_is_better(metric: str) -> bool:
    return metric.rsplit("/", 1)[-1] in ("loss", "perplexity")


def zero_shot_key(metric: str) -> str:
    """The base model's score on the metric's test set: test/rouge1 -> zero_shot/rouge1."""
    return "zero_shot/" + metric.split("/", 1)[-1]


def hyper_cells(record: dict[str, Any], hypers: list[Hyper]) -> dict[str, Any]:
    flat = comparable(record["config"])
    return {h.name: hyper_value(flat, h.key) for h in hypers}


def weights_mb(record: dict[str, Any]) -> float | None:
    """The saved weights' size (what a method stores and ships: an adapter, or the whole model)."""
    size = (record.get("artifacts") or {}).get("weights_bytes")
    return size / 2**20 if is_number(size) else None


def run_row(record: dict[str, Any], metric: str, hypers: list[Hyper], also: tuple[str, ...] = ()) -> dict[str, Any]:
    params, metrics = record["params"], record["metrics"]
    row = {
        "method": record["method"],
        "model": record["model"],
        "data": record["data"],
        "seed": record.get("seed"),
        **hyper_cells(record, hypers),
        "total_params": params.get("total"),
        "trainable": params.get("trainable"),
        "trainable_without_head": params.get("trainable_without_head"),  # a classifier's method, apart from its head
        "trainable_pct": params.get("trainable_pct"),
    }
    # val/loss is what sweep=lr_search selects on; dict.fromkeys: the headline may be one of the others
    # `also`: further metrics asked for on the command line (--also)
    keys = (metric, zero_shot_key(metric), *also, "test/loss", "val/loss")
    row |= {k: metrics.get(k) for k in dict.fromkeys(keys)}
    return row | {
        "train_s": record["timing"].get("train_s"),
        "peak_rss_mb": record["memory"].get("peak_rss_mb"),
        "weights_mb": weights_mb(record),
        "status": record["status"],
        "run_dir": record["run_dir"],
    }


def failed_row(record: dict[str, Any], hypers: list[Hyper]) -> dict[str, Any]:
    return {
        "method": record["method"],
        "model": record["model"],
        "data": record["data"],
        "seed": record.get("seed"),
        **hyper_cells(record, hypers),
        "status": record["status"],
        "error": (record.get("error") or "(still running, or killed)").splitlines()[0],
        "run_dir": record["run_dir"],
    }


def group_by_config(completed: list[dict[str, Any]]) -> list[Group]:
    groups: dict[str, Group] = {}
    for r in completed:
        key = config_key(r["config"])
        groups.setdefault(key, Group(key)).runs.append(r)
    return list(groups.values())


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else None


def group_row(group: Group, metric: str, hypers: list[Hyper], also: tuple[str, ...] = ()) -> dict[str, Any]:
    first = group.first
    spread = {}
    for key in dict.fromkeys((metric, *also)):
        spread[f"{key} mean"], spread[f"{key} std"] = mean_std(group.values(lambda r, k=key: r["metrics"].get(k)))
    return {
        "method": first["method"],
        "model": first["model"],
        "data": first["data"],
        **hyper_cells(first, hypers),
        "seeds": len(group.runs),
        "total_params": first["params"].get("total"),
        "trainable": first["params"].get("trainable"),
        "trainable_without_head": first["params"].get("trainable_without_head"),
        "trainable_pct": first["params"].get("trainable_pct"),
        **spread,
        "train_s mean": mean_std(group.values(lambda r: r["timing"].get("train_s")))[0],
        "peak_rss_mb mean": mean_std(group.values(lambda r: r["memory"].get("peak_rss_mb")))[0],
        "weights_mb": weights_mb(first),
        HIDDEN_MODEL: json.dumps([first["model"], architecture(first["config"])], sort_keys=True),
        HIDDEN_ZERO_SHOT: mean_std(group.values(lambda r: r["metrics"].get(zero_shot_key(metric))))[0],
    }


def reading_order(row: dict[str, Any], hypers: list[Hyper]) -> tuple[Any, ...]:
    """Sort key of a table row: by method, base model (smaller first), hyperparameter values (rank 4
    before 16; numbers, then text, then empty cells), then seed."""
    hyper_values = (row[h.name] for h in hypers)
    size = row["total_params"] if is_number(row.get("total_params")) else 0
    return (row["method"], row["model"], size, *map(_orderable, [*hyper_values, row.get("seed")]))


def _orderable(value: Any) -> tuple[int, float, str]:
    if is_number(value):
        return 0, value, ""
    return (2, 0, "") if value is None else (1, 0, json.dumps(value, sort_keys=True, default=str))


def architecture(config: dict[str, Any]) -> dict[str, Any] | None:
    """model.config (widths, depths) when the config has one: two sizes of one model are two models."""
    model = config.get("model")
    arch = model.get("config") if isinstance(model, dict) else None
    return arch if isinstance(arch, dict) else None


# --- a headline that does not rank --------------------------------------------------------------------


def constant_metric_note(completed: list[dict[str, Any]], metric: str) -> str | None:
    """When `metric` is the same for every run, say so and name a metric that does tell them apart."""
    seen = values(completed, metric)
    if len(seen) < 2 or differs(completed, metric):
        return None
    note = f"{metric} is {format_value(metric, seen[0])} for every run: it does not rank them"
    other = next((m for m in fallback_metrics(completed, metric) if differs(completed, m)), None)
    return f"{note}; {other} differs (--metric {other})." if other else f"{note}, and no other metric differs."


def values(records: list[dict[str, Any]], metric: str) -> list[float]:
    return [v for r in records if (v := r["metrics"].get(metric)) is not None]


def differs(records: list[dict[str, Any]], metric: str) -> bool:
    seen = values(records, metric)
    return len(seen) > 1 and not math.isclose(min(seen), max(seen), rel_tol=1e-9, abs_tol=1e-12)


def fallback_metrics(records: list[dict[str, Any]], metric: str) -> list[str]:
    """Other metrics the runs have, test/loss first, then test/*, then val/*, then the rest; never the
    base model's zero_shot/* (the same for every run of a model)."""
    present = sorted({k for r in records for k in r["metrics"]} - {metric})
    order = ("test/loss", "test/", "val/", "")
    ranked = sorted(present, key=lambda k: next(i for i, p in enumerate(order) if k.startswith(p)))
    return [k for k in ranked if not k.startswith("zero_shot/")]
