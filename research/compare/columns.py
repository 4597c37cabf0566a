"""Which config keys get a column, what the columns are called, and how every cell is written.

A hyperparameter column is any config key (flattened to dotted form: `method.rank`,
`method.peft_config.r`, `data.train_limit`) whose value differs between the runs that have it. The seed
is no column (runs that differ only by seed are one config, averaged), nor is bookkeeping that does not
change what a run computes (output paths, loggers, tags, ...)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from research.config.fields import flatten
from research.runs.record import ADDED_FIELDS, VOLATILE_KEYS

BOOKKEEPING = (*VOLATILE_KEYS, "task_name")  # top-level keys ignored with everything under them
SEED_KEYS = ("seed", "data.seed")  # what "differ only by seed" ignores
# Keys that differ whenever the method (model, data) does and say nothing more than its own column.
SHOWN_ELSEWHERE = ("method.name", "model.name", "data.name")
PLUMBING = ("_target_", "_partial_", "_convert_", "_recursive_", "_args_")  # Hydra instantiation keys
GROUP_ORDER = ("method", "model", "data")  # hyperparameter columns: the method's first
# Cell formats by column (metric columns, named `split/name`, are told by their slash).
COUNTS = ("total_params", "trainable", "trainable_without_head")
PERCENTS = ("trainable_pct",)
SECONDS = ("train_s", "train_s mean")
MEGABYTES = ("peak_rss_mb", "peak_rss_mb mean")
WEIGHTS = ("weights_mb",)  # the saved weights: a LoRA adapter is a megabyte or two, so two decimals
NULL = "null"  # a hyperparameter set to null, unlike one a run does not have (an empty cell)


@dataclass(frozen=True)
class Hyper:
    key: str  # dotted config key
    name: str  # column header


def comparable(config: dict[str, Any]) -> dict[str, Any]:
    """The flattened config less bookkeeping and seed: what two runs of one config share. A record from
    before a field was added ran at its default, so it is compared as having it."""
    added = {f"{s}.{k}": default for (s, k), default in ADDED_FIELDS.items() if isinstance(config.get(s), dict)}
    return {
        key: value
        for key, value in (added | flatten(config)).items()
        if key.split(".", 1)[0] not in BOOKKEEPING and key not in SEED_KEYS
    }


def config_key(config: dict[str, Any]) -> str:
    """Equal for runs that differ only by seed or bookkeeping."""
    return json.dumps(comparable(config), sort_keys=True, default=str)


def hyper_columns(configs: list[dict[str, Any]], taken: set[str]) -> list[Hyper]:
    """A column for each key whose value differs between the configs that have it (method keys first),
    named by short_names."""
    values: dict[str, set[str]] = {}
    for config in configs:
        for key, value in comparable(config).items():
            values.setdefault(key, set()).add(json.dumps(value, sort_keys=True, default=str))
    keys = [key for key, seen in values.items() if len(seen) > 1 and _describes(key)]
    keys.sort(key=_group_rank)
    names = short_names(keys, taken)
    return [Hyper(key, names[key]) for key in keys]


def _group_rank(key: str) -> int:
    group = key.split(".", 1)[0]
    return GROUP_ORDER.index(group) if group in GROUP_ORDER else len(GROUP_ORDER)


def _describes(key: str) -> bool:
    return key not in SHOWN_ELSEWHERE and key.rsplit(".", 1)[-1] not in PLUMBING


def short_names(keys: list[str], taken: set[str]) -> dict[str, str]:
    """`method.rank` -> `rank`, `method.peft_config.r` -> `peft_config.r`: the config group is dropped
    where the rest names one key only (not `method.lr` and `optimizer.lr`, not a fixed column)."""
    tails = [key.split(".", 1)[-1] for key in keys]
    return {
        key: tail if tails.count(tail) == 1 and tail not in taken and (tail == key or tail not in keys) else key
        for key, tail in zip(keys, tails, strict=True)
    }


def hyper_value(flat: dict[str, Any], key: str) -> Any:
    """The run's value for a column: None (empty cell) if the run has no such key, NULL if it is null."""
    if key not in flat:
        return None
    return NULL if flat[key] is None else flat[key]


# --- cells ----------------------------------------------------------------------------------------


def format_value(column: str, value: Any) -> str:
    """One format for every table (md, csv, html): metrics to 4 decimals, parameter counts with
    thousands separators, percents to 2 decimals, seconds to 1, megabytes whole (saved weights to 2 decimals); configured values
    (hyperparameters, seeds) as written in the config."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | dict):
        return json.dumps(value)
    if not isinstance(value, int | float) or not math.isfinite(value):
        return str(value)  # text, or nan / inf
    if column in COUNTS:
        return f"{round(value):,}"
    if column in PERCENTS:
        return f"{value:.2f}"
    if column in SECONDS:
        return f"{value:.1f}"
    if column in MEGABYTES:
        return f"{value:,.0f}"
    if column in WEIGHTS:
        return f"{value:,.2f}"
    if "/" in column:  # test/rouge1, val/loss, zero_shot/rouge1, test/rouge1 mean, ...
        return f"{value:.4f}"
    return f"{value:.4g}" if isinstance(value, float) else str(value)  # as configured: 8, 0.003, 1e-05
