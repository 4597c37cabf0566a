"""research.compare over real run.json files (RunRecord from really composed configs): seed aggregation,
failed/unfinished runs, headline metric, Pareto frontier, self-contained HTML. The end-to-end path (a
real multirun, then compare) is in test_sweeps.py."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from research import compare
from research.tracking import RunRecord

CONF = Path(__file__).resolve().parents[1] / "conf"


def write_run(
    root: Path,
    name: str,
    *overrides: str,
    metrics: dict[str, float] | None = None,
    trainable: int = 1_000,
    total: int = 100_000,
    status: str = "completed",
    started_at: float = 0.0,
) -> Path:
    """A run.json as research.train writes it, for the config these overrides compose."""
    run_dir = root / name
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.output_dir={run_dir}", *overrides])
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), cfg.method.name, cfg.model.name, cfg.data.name)
    record.started_at = started_at
    if status == "completed":
        record.params = {"trainable": trainable, "total": total, "trainable_pct": 100 * trainable / total}
        record.metrics = metrics or {"test/rouge1": 0.5, "zero_shot/rouge1": 0.1, "test/loss": 1.0}
        record.timing = {"train_s": 2.0}
        record.memory = {"peak_rss_mb": 900.0}
        record.complete()
    elif status == "failed":
        record.fail(ValueError("method.rank must be positive"))
    record.write(run_dir)
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """Three seeds of LoRA r=8, one of r=16, a failed and a killed (still `running`) run."""
    for seed, rouge in ((1, 0.2), (2, 0.4), (3, 0.6)):
        write_run(tmp_path, f"r8_s{seed}", f"seed={seed}", metrics={"test/rouge1": rouge, "test/loss": 1.0})
    write_run(tmp_path, "r16", "method.peft_config.r=16", "seed=1", metrics={"test/rouge1": 0.5}, trainable=2_000)
    write_run(tmp_path, "bad", "method.peft_config.r=-1", status="failed")
    write_run(tmp_path, "killed", "method=ia3", status="running")
    return tmp_path


def test_runs_that_differ_only_by_seed_are_one_config(sweep: Path):
    report = compare.build_report(compare.load_records([sweep]))
    assert report.metric == "test/rouge1"
    assert sorted((r["rank"], r["seed"]) for r in report.runs) == [(8, 1), (8, 2), (8, 3), (16, 1)]
    by_rank = {g["rank"]: g for g in report.groups}
    assert by_rank[8]["seeds"] == 3
    assert by_rank[8]["test/rouge1 mean"] == pytest.approx(0.4)
    assert by_rank[8]["test/rouge1 std"] == pytest.approx(0.2), "sample standard deviation over seeds"
    assert by_rank[16]["seeds"] == 1 and by_rank[16]["test/rouge1 std"] is None


def test_failed_and_unfinished_runs_are_listed_apart_with_their_error(sweep: Path):
    report = compare.build_report(compare.load_records([sweep]))
    failed = {r["method"]: r for r in report.failed}
    assert set(failed) == {"lora", "ia3"}
    assert failed["lora"]["status"] == "failed"
    assert failed["lora"]["error"] == "ValueError: method.rank must be positive"
    assert failed["ia3"]["status"] == "running" and "killed" in failed["ia3"]["error"]


def test_a_failure_that_a_relaunch_completed_is_not_listed(tmp_path: Path):
    write_run(tmp_path / "launch1", "job", status="failed", started_at=1.0)
    write_run(tmp_path / "launch2", "job", started_at=2.0)
    report = compare.build_report(compare.load_records([tmp_path]))
    assert report.failed == [] and len(report.runs) == 1


def test_the_headline_metric_follows_the_task_or_the_flag(tmp_path: Path):
    write_run(tmp_path, "a", metrics={"test/accuracy": 0.9, "test/loss": 0.3, "val/loss": 0.4})
    records = compare.load_records([tmp_path])
    assert compare.build_report(records).metric == "test/accuracy"
    assert compare.build_report(records).runs[0]["val/loss"] == 0.4, "the split an lr search selected on"
    report = compare.build_report(records, metric="test/loss")
    assert report.groups[0]["test/loss mean"] == pytest.approx(0.3)
    assert compare.lower_is_better("test/loss") and not compare.lower_is_better("test/accuracy")


def test_pareto_frontier_keeps_only_points_nothing_beats_on_both_axes():
    points = [(10, 0.5), (100, 0.4), (100, 0.7), (1000, 0.6), (5, 0.1)]
    assert compare.pareto_front(points, lower_better=False) == [(5, 0.1), (10, 0.5), (100, 0.7)]
    assert compare.pareto_front([(1, 2.0), (2, 1.0), (3, 1.5)], lower_better=True) == [(1, 2.0), (2, 1.0)]


def test_cli_writes_three_self_contained_files(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    compare.main([str(sweep), "--out", str(out)])

    page = (out / "comparison.html").read_text()
    images = re.findall(r"<img alt='([^']+)' src='data:image/png;base64,([A-Za-z0-9+/=]+)'>", page)
    assert [title for title, _ in images] == [
        "Metric vs trainable parameters",
        "Metric vs LoRA rank",  # ranks 8 and 16 differ
        "Peak memory and train time",  # no model-size plot: every run has the same total
    ]
    assert all(len(png) > 1000 for _, png in images)
    assert "http" not in page and "<script" not in page, "renders offline, no CDN"

    markdown = (out / "comparison.md").read_text()
    assert markdown.count("| lora | tiny_t5 | synthetic |") == 7, "2 configs, 4 runs, 1 failed run"
    assert "ValueError: method.rank must be positive" in markdown

    with (out / "comparison.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(r["status"] for r in rows) == ["completed"] * 4 + ["failed", "running"]


def test_model_size_plot_needs_several_models_of_a_method_not_several_ranks(tmp_path: Path):
    write_run(tmp_path, "r8")
    write_run(tmp_path, "r16", "method.peft_config.r=16", trainable=2_000)
    assert "Metric vs model size" not in compare.build_report(compare.load_records([tmp_path])).plots
    write_run(tmp_path, "wide", "model.config.d_model=256")
    assert "Metric vs model size" in compare.build_report(compare.load_records([tmp_path])).plots
