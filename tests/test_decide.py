"""Decided or not (research/compare/decide.py): the hierarchical paired bootstrap on synthetic per-example scores
(identical arms, a clear gap, coverage of a known difference, speed), the Decided? table `peftlab compare` writes
from predictions.jsonl, and predictions.jsonl as two tiny training runs leave it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from research import compare
from research.compare.decide import DECIDED, NOT_DECIDED, decide
from research.pipeline import train
from research.runs.predictions import FILE, GZIP_FILE, read_predictions, write_predictions
from research.views.predictions import stage_rows
from tests.helpers import compose_cfg, small, write_run

SEEDS, EXAMPLES = 3, 2000


def accuracy_arm(rng: np.random.Generator, rate: float, examples: int = EXAMPLES) -> np.ndarray:
    """(seeds, examples) of 0/1: each seed right on each example with probability `rate`."""
    return (rng.random((SEEDS, examples)) < rate).astype(float)


def test_identical_arms_are_not_decided():
    scores = accuracy_arm(np.random.default_rng(0), 0.8)
    summary = decide({"a": scores, "b": scores.copy()}, {"best": "a"})["b"]
    assert summary.versus["best"].value == 0 and summary.versus["best"].verdict == NOT_DECIDED


def test_arms_alike_in_distribution_are_not_decided():
    rng = np.random.default_rng(1)
    summary = decide({"a": accuracy_arm(rng, 0.8), "b": accuracy_arm(rng, 0.8)}, {"best": "a"})["b"]
    assert summary.versus["best"].verdict == NOT_DECIDED


def test_a_clear_gap_is_decided_and_the_best_arm_is_not_compared_with_itself():
    rng = np.random.default_rng(2)
    summaries = decide({"weak": accuracy_arm(rng, 0.80), "strong": accuracy_arm(rng, 0.90)}, {"best": "strong"})
    gap = summaries["weak"].versus["best"]
    assert gap.verdict == DECIDED and gap.high < 0 and gap.value == pytest.approx(-0.10, abs=0.02)
    assert summaries["strong"].versus == {}
    strong = summaries["strong"]
    assert strong.low < strong.mean < strong.high and strong.std is not None


def test_the_interval_covers_a_known_difference_at_about_its_nominal_rate():
    """Scores (rouge-like) = arm mean + example difficulty (shared by arms: paired) + seed shift + noise. The seed
    shift (sd 0.015) is about the size of the test sample's error of an arm's mean (0.2 / sqrt(500)): the regime
    where both sources matter. (Where seeds agree the interval is wider than nominal, about 99%; where three seeds
    disagree far more than the sample does, narrower, about 90%: see decide.py.)"""
    rng = np.random.default_rng(3)
    truth, examples, replications = -0.02, 500, 200
    covered = 0
    for replication in range(replications):
        difficulty = rng.normal(0, 0.2, examples)
        arms = {
            name: mean + difficulty + rng.normal(0, 0.015, (SEEDS, 1)) + rng.normal(0, 0.2, (SEEDS, examples))
            for name, mean in (("a", 0.50), ("b", 0.52))
        }
        difference = decide(arms, {"b": "b"}, resamples=1000, seed=replication)["a"].versus["b"]
        covered += difference.low <= truth <= difference.high
    coverage = covered / replications
    print(f"coverage of the 95% interval: {coverage:.3f} over {replications} replications")
    assert 0.90 <= coverage <= 0.99


def test_a_pair_of_three_seeds_by_2000_examples_takes_well_under_a_second():
    rng = np.random.default_rng(4)
    arms = {"a": accuracy_arm(rng, 0.8), "b": accuracy_arm(rng, 0.85)}
    start = time.perf_counter()
    decide(arms, {"best": "b"})
    assert time.perf_counter() - start < 1.0


def test_the_same_runs_give_the_same_intervals():
    rng = np.random.default_rng(5)
    arms = {"a": accuracy_arm(rng, 0.8), "b": accuracy_arm(rng, 0.82)}
    assert decide(arms, {"best": "b"}) == decide(arms, {"best": "b"})


# --- predictions.jsonl --------------------------------------------------------------------------------------------
def rows(stage: str, scores: list[float]) -> list[dict]:
    return [
        {
            "stage": stage,
            "id": i,
            "input": f"x{i}",
            "prediction": int(s),
            "references": i % 2,
            "scores": {"accuracy": s},
        }
        for i, s in enumerate(scores)
    ]


def test_a_large_file_is_compressed_and_reads_back_alike(tmp_path: Path):
    small_rows, large_rows = rows("test", [1.0] * 10), rows("test", [0.0] * 2001)
    assert write_predictions(tmp_path, small_rows).name == FILE
    assert write_predictions(tmp_path, large_rows).name == GZIP_FILE and not (tmp_path / FILE).exists()
    assert read_predictions(tmp_path, "test") == large_rows and read_predictions(tmp_path, "zero_shot") == []


def test_rows_repeated_to_even_the_processes_shares_are_kept_once():
    ev = {"index": [0, 2, 1, 0], "inputs": list("abca"), "predictions": [1, 0, 1, 1], "references": [1, 1, 1, 1]}
    kept = stage_rows("test", ev, ("accuracy", "f1"))
    assert [(row["id"], row["input"], row["scores"]) for row in kept] == [
        (0, "a", {"accuracy": 1.0}),
        (2, "b", {"accuracy": 0.0}),
        (1, "c", {"accuracy": 1.0}),
    ]


# --- the Decided? table -------------------------------------------------------------------------------------------
def scored_run(root: Path, name: str, method: str, seed: int, rate: float, examples: int = 400) -> Path:
    """A run.json as train writes it, and its predictions: right on each test example with probability `rate`."""
    rng = np.random.default_rng(seed * 100 + int(rate * 100))
    correct = (rng.random(examples) < rate).astype(float).tolist()
    metrics = {"test/accuracy": float(np.mean(correct)), "test/f1": 0.5}
    run_dir = write_run(root, name, f"method={method}", f"seed={seed}", metrics=metrics)
    write_predictions(run_dir, rows("test", correct))
    return run_dir


def test_compare_writes_the_decided_table(tmp_path: Path):
    for seed in (1, 2, 3):
        scored_run(tmp_path, f"lora_{seed}", "lora", seed, 0.70)
        scored_run(tmp_path, f"full_{seed}", "full", seed, 0.90)
        scored_run(tmp_path, f"ia3_{seed}", "ia3", seed, 0.91)
    compare.main([str(tmp_path), "--resamples", "500"])
    md = (tmp_path / "comparison.md").read_text()
    table = md.split("## Decided?")[1].split("## ")[0]
    assert "`test/accuracy` per example on the 400 examples every run scored" in table
    assert (
        "| arm | metric | seeds | mean ± std | 95% CI | vs best | vs best 95% CI | vs best: decided? | vs full |"
        in table
    )
    cells = {
        line.split(" | ")[0].strip("| "): line.split(" | ") for line in table.splitlines() if line.startswith("| ")
    }
    assert cells["ia3"][5:8] == ["(best)", "", ""] and cells["ia3"][10] == "not decided |"
    assert cells["full"][7:] == ["not decided", "(full)", "", " |"]
    assert cells["lora"][7] == "decided" and cells["lora"][10] == "decided |"
    assert "Decided?" in (tmp_path / "comparison.html").read_text()


def test_runs_without_predictions_get_a_line_saying_why(tmp_path: Path):
    write_run(tmp_path, "old", "method=lora", metrics={"test/accuracy": 0.8})
    compare.main([str(tmp_path)])
    section = (tmp_path / "comparison.md").read_text().split("## Decided?")[1].split("## ")[0]
    assert f"No table: 1 of 1 runs have no {FILE} with `test` rows" in section and "| arm |" not in section


def test_a_metric_without_per_example_scores_gets_a_line_saying_why(tmp_path: Path):
    for seed in (1, 2):
        scored_run(tmp_path, f"lora_{seed}", "lora", seed, 0.7)
    compare.main([str(tmp_path), "--decide-metric", "test/f1"])
    assert "No table: `f1` has no per-example score" in (tmp_path / "comparison.md").read_text()


def test_an_unreadable_predictions_file_gets_a_line_naming_it(tmp_path: Path):
    scored_run(tmp_path, "lora_1", "lora", 1, 0.7)
    (tmp_path / "lora_1" / FILE).write_text('{"stage": "test", "id": 0, "sco')
    compare.main([str(tmp_path)])
    assert (
        f"No table: {tmp_path / 'lora_1' / FILE} cannot be read (JSONDecodeError"
        in (tmp_path / "comparison.md").read_text()
    )


# --- two tiny training runs, then compare ---------------------------------------------------------------------------
def test_training_keeps_every_prediction_and_compare_decides_on_them(tmp_path: Path):
    for method in ("lora", "full"):
        run_dir = tmp_path / method
        assert train(compose_cfg(*small("logger=none", f"method={method}", f"paths.output_dir={run_dir}"))).status == (
            "completed"
        )
        test_rows = read_predictions(run_dir, "test")
        assert [row["id"] for row in test_rows] == [0, 1, 2, 3]  # data.test_limit=4: one line per test row
        assert len(read_predictions(run_dir, "zero_shot")) == 4
        for row in test_rows:
            assert set(row) == {"stage", "id", "input", "prediction", "references", "scores"}
            assert set(row["scores"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum", "bleu"}
    compare.main([str(tmp_path), "--metric", "test/rougeL"])
    section = (tmp_path / "comparison.md").read_text().split("## Decided?")[1].split("## ")[0]
    assert "`test/rougeL` per example on the 4 examples every run scored" in section
    assert "| vs best: decided? |" in section and section.count("| lora ") == 1
