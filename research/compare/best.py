"""The best completed run of a search: `python -m research.compare.best <dirs> --metric val/accuracy
--direction maximize [--key method.lr]` prints its folder, or the value of one of its config keys.

For a search run by hand (docs/sweeps.md); `peftlab study` chooses its arms' rates itself (research/study/choice.py).
Ties go to the run that started first."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from research.compare.records import is_number, latest_per_config, load_records
from research.config.fields import flatten

DIRECTIONS = ("maximize", "minimize")


def best_run(dirs: list[Path], metric: str, direction: str) -> dict[str, Any]:
    """The completed record with the best `metric`; ValueError naming what is missing when there is none."""
    if direction not in DIRECTIONS:
        raise ValueError(f"--direction {direction!r}: allowed {', '.join(DIRECTIONS)}")
    runs = [r for r in latest_per_config(load_records(dirs)) if r["status"] == "completed"]
    scored = [r for r in runs if is_number(r["metrics"].get(metric))]
    if not scored:
        where = ", ".join(map(str, dirs))
        raise ValueError(f"no completed run under {where} has {metric!r} ({len(runs)} completed runs)")
    sign = 1 if direction == "maximize" else -1
    return max(scored, key=lambda r: sign * r["metrics"][metric])


def config_value(record: dict[str, Any], key: str) -> Any:
    flat = flatten(record["config"])
    if key not in flat:
        raise ValueError(f"{record['run_dir']}: its config has no {key!r}")
    return flat[key]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m research.compare.best", description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path, help="sweep or run folders, searched recursively")
    parser.add_argument("--metric", required=True, help="a metric key of run.json, e.g. val/accuracy")
    parser.add_argument("--direction", default="maximize", help="maximize (default) or minimize")
    parser.add_argument("--key", help="print this config key of the best run (e.g. method.lr), not its folder")
    args = parser.parse_args(argv)
    try:
        best = best_run(args.dirs, args.metric, args.direction)
        print(config_value(best, args.key) if args.key else best["run_dir"])
    except ValueError as err:
        sys.exit(f"research.compare.best: {err}")


if __name__ == "__main__":
    main()
