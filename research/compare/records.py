"""Reading run.json records. A record compare cannot use (truncated, not JSON, missing what the tables
need) is reported with its path and skipped: one corrupt file never hides the other runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from research.runs.record import REQUIRED, RUN_FILE  # what every reader of a record indexes

NUMERIC = ("params", "metrics", "timing", "memory")  # objects whose values are averaged and plotted
OPTIONAL: dict[str, tuple[type, ...]] = {"started_at": (int, float), "error": (str,)}
JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "a number", float: "a number"}
ZERO_SHOT = "zero_shot"  # the method `evaluate` records when it scores the base model, untrained
TRAINING = ("method", "optimizer", "scheduler", "trainer")  # config groups a zero-shot evaluation never used


class RecordError(ValueError):
    """A run.json that compare cannot use; the message says what is wrong with it."""


@dataclass(frozen=True)
class Unreadable:
    path: Path
    problem: str


def read_runs(dirs: Iterable[Path]) -> tuple[list[dict[str, Any]], list[Unreadable]]:
    """Every run.json under `dirs` (each once, even if found twice), split into usable records (with their
    folder in `run_dir`) and unreadable ones, each of which is warned about on stderr."""
    records: dict[Path, dict[str, Any]] = {}
    unreadable: dict[Path, Unreadable] = {}
    for root in dirs:
        for path in sorted(Path(root).rglob(RUN_FILE)):
            path = path.resolve()
            if path in records or path in unreadable:
                continue
            try:
                records[path] = as_compared(parse_record(path)) | {"run_dir": str(path.parent)}
            except RecordError as err:
                unreadable[path] = Unreadable(path, str(err))
                print(f"warning: research.compare skips unreadable {path}: {err}", file=sys.stderr)
    return list(records.values()), list(unreadable.values())


def load_records(dirs: Iterable[Path]) -> list[dict[str, Any]]:
    """The usable records under `dirs`; unreadable ones are warned about and left out."""
    return read_runs(dirs)[0]


def parse_record(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise RecordError(f"cannot be read ({err})") from None
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise RecordError(f"not valid JSON, truncated? ({err})") from None
    check_record(record)
    return record


def as_compared(record: dict[str, Any]) -> dict[str, Any]:
    """A zero-shot evaluation beside trained runs: its scores of the base on its split are that split's
    scores (`zero_shot/rouge1` also as `test/rouge1`), and it has no training hyperparameters (the
    composed method it was built with never trained, so its learning rate is no column's value)."""
    if record["method"] != ZERO_SHOT:
        return record
    split = record["config"].get("split", "test")
    scores = {f"{split}/{k.split('/', 1)[1]}": v for k, v in record["metrics"].items() if k.startswith("zero_shot/")}
    config = {k: v for k, v in record["config"].items() if k not in TRAINING}
    return record | {"config": config, "metrics": scores | record["metrics"]}


def check_record(record: Any) -> None:
    """Raise RecordError naming the first thing that would stop compare from using `record`."""
    if not isinstance(record, dict):
        raise RecordError(f"not a JSON object but {json_type(record)}")
    if missing := [key for key in REQUIRED if key not in record]:
        raise RecordError(f"missing {', '.join(missing)}")
    for key, kind in REQUIRED.items():
        if not isinstance(record[key], kind):
            raise RecordError(f"`{key}` is {json_type(record[key])}, not {JSON_TYPES[kind]}")
    for key, kinds in OPTIONAL.items():
        value = record.get(key)
        if value is not None and (not isinstance(value, kinds) or isinstance(value, bool)):
            raise RecordError(f"`{key}` is {json_type(value)}, not {JSON_TYPES[kinds[0]]}")
    for group in NUMERIC:
        for name, value in record[group].items():
            if value is not None and not is_number(value):
                raise RecordError(f"`{group}.{name}` is {json_type(value)}, not a number")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def run_seconds(record: dict[str, Any]) -> float | None:
    """Start to finish (or to the stop) of one run, on the wall clock; None while it has no end."""
    start, end = record.get("started_at"), record.get("finished_at")
    return end - start if is_number(start) and is_number(end) else None


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return JSON_TYPES.get(type(value), type(value).__name__)


def latest_per_config(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One record per config_hash: a completed one over a failed or unfinished one, then the newest.
    A failure that a re-launch then completed is history, not an open failure."""
    best: dict[str, dict[str, Any]] = {}
    for r in records:
        kept = best.get(r["config_hash"])
        if kept is None or _rank(r) > _rank(kept):
            best[r["config_hash"]] = r
    return sorted(best.values(), key=lambda r: (r.get("started_at") or 0, r["run_dir"]))


def _rank(record: dict[str, Any]) -> tuple[bool, float]:
    return record["status"] == "completed", record.get("started_at") or 0
