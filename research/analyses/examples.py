"""A few evaluation rows per stage (input, prediction, references) for a human to read: written to
`examples.jsonl` in the run folder and as a table through every logger that has `log_text` (W&B)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

FILE = "examples.jsonl"


class ExamplePredictions(pl.Callback):
    def __init__(self, num_examples: int = 5) -> None:
        if num_examples < 0:
            raise ValueError(f"callbacks.examples.num_examples={num_examples} must be >= 0")
        self.num_examples = num_examples
        self.rows: list[dict[str, Any]] = []

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ev = pl_module.last_eval
        if not ev or not trainer.is_global_zero:
            return
        stage = ev["stage"][0]
        for i in range(min(self.num_examples, len(ev["predictions"]))):
            row = {k: ev[k][i] for k in ("inputs", "predictions", "references")}
            self.rows.append({"stage": stage, "input": row["inputs"], "prediction": row["predictions"],
                              "references": row["references"]})  # fmt: skip
        self.write(Path(trainer.default_root_dir), trainer.loggers)

    def write(self, run_dir: Path, loggers: list) -> None:
        with (run_dir / FILE).open("w") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows)
        for lg in loggers:
            if hasattr(lg, "log_text"):
                data = [[r["stage"], r["input"], str(r["prediction"]), str(r["references"])] for r in self.rows]
                lg.log_text(key="examples", columns=["stage", "input", "prediction", "references"], data=data)
