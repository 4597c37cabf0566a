"""A few evaluation rows per stage (input, prediction, references) for a human to read: written to
`examples.jsonl` in the run folder and as a table through every logger that has `log_text` (W&B). The
validation rows are the last epoch's; test rows are kept per stage (zero-shot, then fine-tuned)."""

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
        self.stages: dict[str, list[dict[str, Any]]] = {}

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.keep(trainer, pl_module, log=False)  # every epoch: only the file, the loggers get the test rows

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.keep(trainer, pl_module, log=True)

    def keep(self, trainer: pl.Trainer, pl_module: pl.LightningModule, log: bool) -> None:
        ev = pl_module.last_eval
        if not ev or not trainer.is_global_zero or trainer.sanity_checking:
            return
        n = min(self.num_examples, len(ev["predictions"]))
        self.stages[ev["stage"][0]] = [
            {"input": ev["inputs"][i], "prediction": ev["predictions"][i], "references": ev["references"][i]}
            for i in range(n)
        ]
        self.write(Path(trainer.default_root_dir), trainer.loggers if log else [])

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [{"stage": stage, **row} for stage, rows in self.stages.items() for row in rows]

    def write(self, run_dir: Path, loggers: list) -> None:
        with (run_dir / FILE).open("w") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in self.rows)
        for lg in loggers:
            if hasattr(lg, "log_text"):
                data = [[r["stage"], r["input"], str(r["prediction"]), str(r["references"])] for r in self.rows]
                lg.log_text(key="examples", columns=["stage", "input", "prediction", "references"], data=data)
