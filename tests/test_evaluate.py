"""research.evaluate re-scores a saved run exactly as training scored it (every prediction too), and the base
zero-shot."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from research.pipeline import evaluate, train
from research.runs import read_record
from research.runs.predictions import read_predictions
from tests.helpers import compose_cfg, evaluate_cfg, small


def train_cfg(*overrides: str) -> DictConfig:
    return compose_cfg(*small("logger=none", "callbacks=none", *overrides))


@pytest.mark.parametrize(
    ("model", "method"),
    [("tiny_t5", "lora"), ("tiny_t5", "full"), ("tiny_llama", "adapter"), ("tiny_llama", "selective")],
)
def test_saved_weights_reproduce_the_runs_test_metrics(tmp_path: Path, model: str, method: str):
    run = tmp_path / "run"
    trained = train(train_cfg(f"model={model}", f"method={method}", "trainer.max_steps=3", f"paths.output_dir={run}"))
    # Composed with the defaults (tiny_t5, lora): the run's own model and method configs must win.
    rescored = evaluate(evaluate_cfg(f"run_dir={run}", f"paths.output_dir={tmp_path / 'eval'}"))
    expected = {k: v for k, v in trained.metrics.items() if k.startswith("test/") and not k.endswith("eval_s")}
    assert {k: rescored.metrics[k] for k in expected} == pytest.approx(expected, abs=1e-6)
    assert expected["test/loss"] != pytest.approx(trained.metrics["zero_shot/loss"], abs=1e-6)  # it did train
    assert read_record(tmp_path / "eval")["status"] == "completed"
    assert read_predictions(tmp_path / "eval") == read_predictions(run, "test")


def test_without_a_run_it_scores_the_base_model_zero_shot(tmp_path: Path):
    """Prompt tuning changes the model at injection: zero-shot must bypass it, as training's baseline does."""
    record = evaluate(evaluate_cfg("method=prompt_tuning", f"paths.output_dir={tmp_path}"))
    trained = train(train_cfg("method=prompt_tuning", "train=false", f"paths.output_dir={tmp_path / 'train'}"))
    assert record.method == "zero_shot"
    assert [row["id"] for row in read_predictions(tmp_path, "zero_shot")] == [0, 1, 2, 3]
    assert record.metrics["zero_shot/loss"] == pytest.approx(trained.metrics["zero_shot/loss"], abs=1e-6)
    base = trained.params["total"] - trained.params["trainable"]  # prompt tuning adds its prompt, nothing else
    assert record.params == {"trainable": 0, "total": base, "trainable_pct": 0.0}, "the base, not the injected"


def test_a_directory_that_is_not_a_run_is_refused(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="holds no run.json"):
        evaluate(evaluate_cfg(f"run_dir={tmp_path}", f"paths.output_dir={tmp_path / 'eval'}"))
