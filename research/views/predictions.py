"""Every row of every evaluation kept: after each `trainer.test` (the `zero_shot` and `test` stages of train, the
split `evaluate` scores) its rows with their per-example scores go to predictions.jsonl (research/runs/predictions.py)
and, through every logger that has `log_text` (W&B), to a table `predictions/<stage>`. Averages hide which
examples moved; the rows let anyone look, and let `peftlab compare` resample them (research/compare/decide.py).
examples.jsonl (research/analyses/examples.py) stays the few rows a human reads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from research.metrics import example_scores
from research.runs.predictions import write_predictions


class KeptPredictions(pl.Callback):
    def __init__(self) -> None:
        self.stages: dict[str, list[dict[str, Any]]] = {}

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        ev = pl_module.last_eval
        if not ev or not trainer.is_global_zero:
            return
        stage = ev["stage"][0]
        self.stages[stage] = stage_rows(stage, ev, pl_module.task.metrics)
        write_predictions(Path(trainer.default_root_dir), [row for rows in self.stages.values() for row in rows])
        for lg in trainer.loggers:
            if hasattr(lg, "log_text"):
                lg.log_text(key=f"predictions/{stage}", **table(self.stages[stage]))


def stage_rows(stage: str, ev: dict[str, list], metrics: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per example of the split, in its order. Under DDP the gathered rows repeat the few examples
    that evened the processes' shares: each id is kept once."""
    scores = example_scores(metrics, ev["predictions"], ev["references"])
    rows: dict[int, dict[str, Any]] = {}
    for i, index in enumerate(ev["index"]):
        rows.setdefault(
            index,
            {
                "stage": stage,
                "id": index,
                "input": ev["inputs"][i],
                "prediction": ev["predictions"][i],
                "references": ev["references"][i],
                "scores": scores[i],
            },
        )
    return list(rows.values())


def table(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows as `log_text` takes them: one column per score key (W&B shows the first 10,000 rows)."""
    keys = list(rows[0]["scores"]) if rows else []
    columns = ["id", "input", "prediction", "references", *keys]
    data = [
        [r["id"], r["input"], str(r["prediction"]), str(r["references"]), *(r["scores"][k] for k in keys)] for r in rows
    ]
    return {"columns": columns, "data": data}
