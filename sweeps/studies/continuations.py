"""How many summaries continue the dialogue instead: the test predictions that contain a speaker turn
(`#Person1#:`), and those that start with one, per run, from each run's examples.jsonl (callbacks.examples.num_examples
must cover the test split). DialogSum's references name speakers (`#Person1# asks ...`) but never write a
turn, so a turn in a prediction is the model writing dialogue, not summarizing.

    python sweeps/studies/continuations.py <run or sweep folders ...> --out continuations.csv
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

TURN = re.compile(r"#Person\d#\s*:")


def rows(folder: Path) -> list[dict[str, object]]:
    found = []
    for examples in sorted(folder.rglob("examples.jsonl")):
        record = json.loads((examples.parent / "run.json").read_text())
        for line in examples.read_text().splitlines():
            row = {"stage": "test"} | json.loads(line)  # the control arm writes test rows without a stage
            if row["stage"] in ("test", "zero_shot"):
                found.append({"run_dir": str(examples.parent), "method": record["method"], **row})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    table: dict[tuple[str, str, str], list[int]] = {}  # turns anywhere, turns first, predictions
    for folder in args.dirs:
        for row in rows(folder):
            key = (str(row["method"]), str(row["stage"]), str(row["run_dir"]))
            counts = table.setdefault(key, [0, 0, 0])
            prediction = str(row["prediction"]).strip()
            counts[0] += bool(TURN.search(prediction))
            counts[1] += bool(TURN.match(prediction))
            counts[2] += 1
    with args.out.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["method", "stage", "run_dir", "predictions", "with_a_turn", "starting_with_a_turn"])
        for (method, stage, run_dir), (turns, starts, total) in sorted(table.items()):
            writer.writerow([method, stage, run_dir, total, turns, starts])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
