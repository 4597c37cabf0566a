"""research.compare over real run.json files (RunRecord from really composed configs): seed aggregation,
failed/unfinished runs, headline metric, Pareto frontier, self-contained HTML. The end-to-end path (a
real multirun, then compare) is in test_sweeps.py."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from research import compare
from research.compare import plots
from research.runs import RunRecord
from tests.helpers import CONF, finish, write_run


def write_record(
    root: Path,
    name: str,
    config: dict[str, Any],
    *,
    metrics: dict[str, float] | None = None,
    trainable: int = 1_000,
    total: int = 100_000,
    status: str = "completed",
) -> Path:
    """A run.json for a hand-made config: tests that must not depend on how conf/ is laid out."""
    run_dir = root / name
    config = {"paths": {"output_dir": str(run_dir)}, "tags": [name], **config}
    names = (config["method"]["name"], config["model"]["name"], config["data"]["name"])
    return finish(RunRecord.start(config, *names), run_dir, metrics, trainable, total, status, 0.0)


def loha(r: int, seed: int = 1, **extra: Any) -> dict[str, Any]:
    """A hand-made config of a method whose rank is nested (method.peft_config.r)."""
    method = {"_target_": "research.methods.PeftMethod", "name": "loha", "lr": 3e-3, "peft_config": {"r": r}}
    config = {
        "method": method,
        "model": {"name": "tiny", "config": {"d_model": 64}},
        "data": {"name": "synthetic", "train_limit": None, "seed": seed},
        "optimizer": {"weight_decay": 0.0},
        "seed": seed,
        "task_name": f"sweep{seed}",
    }
    for dotted, value in extra.items():  # method__peft_config__alpha=8 -> config["method"]["peft_config"]["alpha"]
        *parents, leaf = dotted.split("__")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return config


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
    assert sorted((r["peft_config.r"], r["seed"]) for r in report.runs) == [(8, 1), (8, 2), (8, 3), (16, 1)]
    by_rank = {g["peft_config.r"]: g for g in report.groups}
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
        "Metric vs lora peft_config.r",  # ranks 8 and 16 differ
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
    assert all(not Path(r["run_dir"]).is_absolute() and (out / r["run_dir"] / "run.json").is_file() for r in rows), (
        "run folders from the report's folder: no path of the machine that wrote it"
    )


def test_model_size_plot_needs_several_models_of_a_method_not_several_ranks(tmp_path: Path):
    write_run(tmp_path, "r8")
    write_run(tmp_path, "r16", "method.peft_config.r=16", trainable=2_000)
    assert "Metric vs model size" not in compare.build_report(compare.load_records([tmp_path])).plots
    write_run(tmp_path, "wide", "model.config.d_model=256")
    assert "Metric vs model size" in compare.build_report(compare.load_records([tmp_path])).plots


# --- unreadable records ---------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _drop(key: str) -> Any:
    def corrupt(path: Path) -> None:
        record = json.loads(path.read_text())
        del record[key]
        path.write_text(json.dumps(record))

    return corrupt


CORRUPTIONS = {
    "truncated": (_truncate, "not valid JSON"),
    "no config_hash": (_drop("config_hash"), "missing config_hash"),
    "no metrics": (_drop("metrics"), "missing metrics"),
    "empty object": (lambda p: p.write_text("{}"), "missing status, config_hash, method, model"),
    "not an object": (lambda p: p.write_text("[1, 2]"), "not a JSON object but an array"),
    "metric not a number": (
        lambda p: p.write_text(p.read_text().replace('"test/rouge1": 0.9', '"test/rouge1": "high"')),
        "`metrics.test/rouge1` is a string, not a number",
    ),
}


@pytest.mark.parametrize("corruption", CORRUPTIONS)
def test_an_unreadable_record_is_reported_once_and_skipped(
    sweep: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], corruption: str
):
    corrupt, problem = CORRUPTIONS[corruption]
    bad = write_run(sweep, "corrupt", "method.peft_config.r=32", metrics={"test/rouge1": 0.9}) / "run.json"
    corrupt(bad)
    out = tmp_path / "report"
    compare.main([str(sweep), str(sweep / "corrupt"), "--out", str(out)])  # found twice, reported once

    stderr = capsys.readouterr().err
    assert stderr.count(str(bad.resolve())) == 1 and problem in stderr
    markdown = (out / "comparison.md").read_text()
    unreadable = markdown.split("## Unreadable records")[1]
    assert str(bad.resolve()) in unreadable and problem.replace("|", "\\|") in unreadable
    assert markdown.count("| lora | tiny_t5 | synthetic |") == 7, "every readable run is still there"
    assert "| 32 |" not in markdown.split("## Unreadable records")[0]
    assert str(bad.resolve()) in (out / "comparison.html").read_text()


def test_only_unreadable_records_still_make_a_report_that_lists_them(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text('{"status": "compl')
    report = compare.compare([tmp_path])
    assert report.runs == [] and [u.path.parent.name for u in report.unreadable] == ["a"]
    assert "## Unreadable records" in (tmp_path / "comparison.md").read_text()


def test_folders_without_records_or_missing_folders_are_clear_errors(tmp_path: Path):
    with pytest.raises(SystemExit, match="no run.json under"):
        compare.main([str(tmp_path)])
    with pytest.raises(SystemExit, match=f"no such folder: {tmp_path / 'nope'}"):
        compare.main([str(tmp_path / "nope")])


def test_records_with_a_sparse_config_and_no_parameter_counts_still_compare(tmp_path: Path):
    for name, k in (("a", 1.0), ("b", 2.0)):
        record = RunRecord.start({"seed": 1, "method": {"name": "x", "k": k}}, "x", "m", "d")
        record.metrics = {"test/loss": k}
        record.complete()
        record.write(tmp_path / name)
    report = compare.compare([tmp_path])
    assert [(r["k"], r["test/loss"]) for r in report.runs] == [(1.0, 1.0), (2.0, 2.0)]
    assert list(report.plots) == ["Metric vs x k", "Peak memory and train time"], "nothing to count: no tradeoff"


# --- hyperparameter columns -----------------------------------------------------------------------


def test_every_config_key_that_differs_gets_a_column_nested_ones_too(tmp_path: Path):
    write_record(tmp_path, "r4_s1", loha(4, seed=1), metrics={"test/loss": 1.0})
    write_record(tmp_path, "r4_s2", loha(4, seed=2), metrics={"test/loss": 3.0})
    write_record(tmp_path, "r8", loha(8, data__train_limit=100), metrics={"test/loss": 0.5})
    write_record(tmp_path, "wd", loha(8, optimizer__weight_decay=0.01), metrics={"test/loss": 0.7})
    report = compare.build_report(compare.load_records([tmp_path]))

    assert [(h.key, h.name) for h in report.hypers] == [
        ("method.peft_config.r", "peft_config.r"),
        ("data.train_limit", "train_limit"),
        ("optimizer.weight_decay", "weight_decay"),
    ], "no seed, output path, tags or task name column"
    by_config = {(g["peft_config.r"], g["train_limit"], g["weight_decay"]): g for g in report.groups}
    assert set(by_config) == {(4, "null", 0.0), (8, 100, 0.0), (8, "null", 0.01)}
    assert by_config[4, "null", 0.0]["seeds"] == 2, "seeds (and task names) of one config are one row"
    assert by_config[4, "null", 0.0]["test/loss mean"] == pytest.approx(2.0)
    markdown = compare.markdown_table([compare.report.visible(g) for g in report.groups])
    assert markdown.splitlines()[0].startswith("| method | model | data | peft_config.r | train_limit | weight_decay |")


def test_a_record_from_before_head_lr_is_one_config_with_a_run_that_leaves_it_null(tmp_path: Path):
    """optimizer.head_lr came later: a record without it ran at its default (null, the method's rate), so it
    averages with a run that leaves it null; a rate set is another config, in a column of its own."""
    write_record(tmp_path, "before", loha(4, seed=1), metrics={"test/loss": 1.0})
    write_record(tmp_path, "null", loha(4, seed=2, optimizer__head_lr=None), metrics={"test/loss": 3.0})
    write_record(tmp_path, "set", loha(4, seed=1, optimizer__head_lr=1e-3), metrics={"test/loss": 0.5})
    report = compare.build_report(compare.load_records([tmp_path]))
    assert [h.key for h in report.hypers] == ["optimizer.head_lr"]
    assert {g["head_lr"]: g["seeds"] for g in report.groups} == {"null": 2, 1e-3: 1}


def test_a_key_only_one_method_has_is_no_column_unless_it_varies(tmp_path: Path):
    write_record(tmp_path, "loha", loha(4))
    adapter = loha(4) | {"method": {"name": "adapter", "lr": 1e-3, "bottleneck_size": None, "mode": "houlsby"}}
    write_record(tmp_path, "adapter_default", adapter)
    assert [h.name for h in compare.build_report(compare.load_records([tmp_path])).hypers] == ["lr"]

    adapter = loha(4) | {"method": {"name": "adapter", "lr": 1e-3, "bottleneck_size": 64, "mode": "pfeiffer"}}
    write_record(tmp_path, "adapter_64", adapter)
    report = compare.build_report(compare.load_records([tmp_path]))
    assert [h.name for h in report.hypers] == ["lr", "bottleneck_size", "mode"]
    cells = {(r["method"], r["bottleneck_size"], r["mode"]) for r in report.runs}
    assert cells == {("loha", None, None), ("adapter", "null", "houlsby"), ("adapter", 64, "pfeiffer")}


def test_column_headers_keep_the_group_where_the_short_name_is_ambiguous(tmp_path: Path):
    write_record(tmp_path, "a", loha(4, method__lr=1e-3, optimizer__lr=0.1, optimizer__method="x"))
    write_record(tmp_path, "b", loha(4, method__lr=3e-3, optimizer__lr=0.2, optimizer__method="y"))
    names = [h.name for h in compare.build_report(compare.load_records([tmp_path])).hypers]
    assert names == ["method.lr", "optimizer.lr", "optimizer.method"], "not `lr` twice, not the method column"


def test_columns_from_composed_configs(tmp_path: Path):
    for limit in (10, 20):
        for seed in (1, 2):
            write_run(tmp_path, f"l{limit}_s{seed}", f"data.train_limit={limit}", f"seed={seed}")
    report = compare.build_report(compare.load_records([tmp_path]))
    assert [h.key for h in report.hypers] == ["data.train_limit"]
    assert sorted((g["train_limit"], g["seeds"]) for g in report.groups) == [(10, 2), (20, 2)]


def test_a_numeric_method_hyperparameter_that_varies_gets_a_plot_whatever_its_key(tmp_path: Path):
    for r, loss in ((4, 1.0), (8, 0.8), (16, 0.7)):
        write_record(tmp_path, f"r{r}", loha(r), metrics={"test/loss": loss}, trainable=r * 100)
    plots = compare.build_report(compare.load_records([tmp_path])).plots
    assert list(plots) == [
        "Metric vs trainable parameters",
        "Metric vs loha peft_config.r",
        "Peak memory and train time",
    ]


# --- zero-shot reference --------------------------------------------------------------------------


def test_zero_shot_is_a_dashed_reference_line_on_the_metric_plots(tmp_path: Path):
    for rank, zero_shot in ((8, 0.1), (16, 0.3)):
        metrics = {"test/rouge1": 0.5, "zero_shot/rouge1": zero_shot, "test/loss": 1.0 / rank}
        write_run(tmp_path, f"r{rank}", f"method.peft_config.r={rank}", metrics=metrics, trainable=rank * 100)
    report = compare.build_report(compare.load_records([tmp_path]))
    assert plots.zero_shot_lines(report.groups) == {"zero-shot": pytest.approx(0.2)}, "mean of the runs"

    names = [h.name for h in report.hypers]
    figures = [
        plots.plot_tradeoff(report.groups, report.metric, names),
        plots.plot_by(
            report.groups, "peft_config.r", report.metric, "lora rank", lambda r: "lora", ticks_at_values=True
        ),
    ]
    for figure in figures:
        (line,) = [ln for ln in figure.axes[0].get_lines() if ln.get_label() == "zero-shot"]
        assert line.get_linestyle() == "--" and list(line.get_ydata()) == pytest.approx([0.2, 0.2])
        assert "zero-shot" in [t.get_text() for t in figure.axes[0].get_legend().get_texts()]


def test_a_tradeoff_of_many_configs_tells_methods_apart_by_colour_not_by_overlapping_labels(tmp_path: Path):
    methods = ["adapter", "full", "ia3", "lora", "prompt_tuning"]
    for i, method in enumerate(methods):
        for lr in (1e-4, 3e-4):
            metrics = {"test/rouge1": 0.4 + i / 100 + lr * 100, "test/loss": 1.0}
            write_run(
                tmp_path, f"{method}_{lr}", f"method={method}", f"method.lr={lr}", metrics=metrics, trainable=i + 1
            )
    report = compare.build_report(compare.load_records([tmp_path]))
    assert len(report.groups) == 10 > plots.ANNOTATED
    figure = plots.plot_tradeoff(report.groups, report.metric, [h.name for h in report.hypers])
    ax = figure.axes[0]
    assert len(ax.texts) == 0, "no per-point labels: ten of them overlap"
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["Pareto frontier", *methods]
    figure.canvas.draw()
    assert legend.get_window_extent().x0 > ax.get_window_extent().x1, "the legend sits beside the points"


def test_each_base_model_has_its_own_zero_shot_line(tmp_path: Path):
    write_run(tmp_path, "small", metrics={"test/rouge1": 0.5, "zero_shot/rouge1": 0.1})
    write_run(tmp_path, "wide", "model.config.d_model=256", metrics={"test/rouge1": 0.6, "zero_shot/rouge1": 0.2})
    write_run(tmp_path, "none", "method=ia3", metrics={"test/rouge1": 0.4})  # zero_shot=false: no line of its own
    report = compare.build_report(compare.load_records([tmp_path]))
    assert plots.zero_shot_lines(report.groups) == {
        "zero-shot tiny_t5 d_model=128": pytest.approx(0.1),
        "zero-shot tiny_t5 d_model=256": pytest.approx(0.2),
    }


def test_a_zero_shot_evaluation_is_scored_beside_the_runs_without_their_hyperparameters(tmp_path: Path):
    """`evaluate` without a run scores the base (zero_shot/*) on the test split, built with the composed
    method: its scores belong in the test columns, and the method's learning rate is not its own."""
    for lr, rouge in (("1e-3", 0.5), ("3e-4", 0.4)):
        write_run(tmp_path, f"lr{lr}", f"method.lr={lr}", metrics={"test/rouge1": rouge, "test/loss": 1.0})
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("evaluate", overrides=[f"paths.output_dir={tmp_path / 'zero'}"])
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), "zero_shot", cfg.model.name, cfg.data.name)
    finish(record, tmp_path / "zero", {"zero_shot/rouge1": 0.2, "zero_shot/loss": 3.0}, 0, 100_000, "completed", 0.0)

    report = compare.build_report(compare.load_records([tmp_path]))
    (zero,) = [g for g in report.groups if g["method"] == "zero_shot"]
    assert (zero["test/rouge1 mean"], zero["lr"]) == (pytest.approx(0.2), None)
    assert [g["lr"] for g in report.groups if g["method"] != "zero_shot"] == [0.0003, 0.001]
    assert plots.zero_shot_lines(report.groups) == {"zero-shot": pytest.approx(0.2)}


# --- a headline metric that does not rank ---------------------------------------------------------


def test_a_headline_equal_for_every_run_is_called_out_with_a_metric_that_differs(tmp_path: Path):
    for rank, loss in ((8, 2.5), (16, 2.1)):
        write_run(tmp_path, f"r{rank}", f"method.peft_config.r={rank}", metrics={"test/rouge1": 0.0, "test/loss": loss})
    compare.main([str(tmp_path)])
    expected = "test/rouge1 is 0.0000 for every run: it does not rank them; test/loss differs (--metric test/loss)."
    assert expected in (tmp_path / "comparison.md").read_text()
    assert expected in (tmp_path / "comparison.html").read_text()


def test_the_metric_named_instead_is_one_that_differs(tmp_path: Path):
    for rank, bleu in ((8, 0.1), (16, 0.2)):
        metrics = {"test/rouge1": 0.3, "test/loss": 2.0, "zero_shot/loss": float(rank), "test/bleu": bleu}
        write_run(tmp_path, f"r{rank}", f"method.peft_config.r={rank}", metrics=metrics)
    records = compare.load_records([tmp_path])
    assert compare.build_report(records).note.endswith("test/bleu differs (--metric test/bleu).")
    assert compare.build_report(records, metric="test/bleu").note is None


# --- one number format ----------------------------------------------------------------------------


def test_md_and_html_write_every_number_alike_and_csv_keeps_raw_values(tmp_path: Path):
    metrics = {"test/rouge1": 0.123456, "test/loss": 12.5, "zero_shot/rouge1": 0.05}
    counts = {"trainable": 1_234_567, "total": 987_654_321, "head": 148_610}
    write_run(tmp_path, "a", "method.peft_config.r=4", metrics=metrics, **counts)
    write_run(tmp_path, "b", "method.lr=0.0001", metrics=metrics, **counts)
    compare.main([str(tmp_path)])
    with (tmp_path / "comparison.csv").open() as fh:
        row = next(r for r in csv.DictReader(fh) if r["peft_config.r"] == "4")
    assert (row["test/rouge1"], row["trainable"]) == ("0.123456", "1234567")
    expected = {
        "test/rouge1": "0.1235",
        "test/loss": "12.5000",
        "zero_shot/rouge1": "0.0500",
        "trainable": "1,234,567",
        "trainable_without_head": "1,085,957",  # the method's own, apart from a classifier's new head
        "total_params": "987,654,321",
        "trainable_pct": "0.12",
        "train_s": "2.0",
        "peak_rss_mb": "900",
        "method.lr": "0.003",
    }
    markdown, page = (tmp_path / "comparison.md").read_text(), (tmp_path / "comparison.html").read_text()
    for text in [*expected.values(), "0.0001"]:
        assert f"| {text} |" in markdown and f">{text}</td>" in page, text


# --- where it wrote -------------------------------------------------------------------------------


def test_compare_ends_by_printing_the_three_paths(
    sweep: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.chdir(tmp_path)
    compare.main([str(sweep), "--out", "report"])
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "report/comparison.md",
        "report/comparison.csv",
        "report/comparison.html",
    ]
    elsewhere = tmp_path.parent / f"{tmp_path.name}_elsewhere"
    compare.main([str(sweep), "--out", str(elsewhere)])
    assert capsys.readouterr().out.splitlines()[-1] == str(elsewhere.resolve() / "comparison.html")


def test_more_metric_columns_on_request_and_the_saved_weights_size(tmp_path: Path):
    for seed, rouge2 in [(1, 0.1), (2, 0.3)]:
        run_dir = write_run(tmp_path, f"s{seed}", f"seed={seed}", metrics={"test/rouge1": 0.5, "test/rouge2": rouge2})
        record = json.loads((run_dir / "run.json").read_text())
        record["artifacts"]["weights_bytes"] = 3 * 2**20
        (run_dir / "run.json").write_text(json.dumps(record))
    report = compare.compare([tmp_path], also=("test/rouge2",))
    (group,) = report.groups
    assert group["test/rouge2 mean"] == pytest.approx(0.2) and group["test/rouge2 std"] == pytest.approx(
        0.1414, abs=1e-4
    )
    assert group["weights_mb"] == 3.0 and {r["test/rouge2"] for r in report.runs} == {0.1, 0.3}
    assert "| 0.2000 | 0.1414 |" in (tmp_path / "comparison.md").read_text()
    assert "3.00" in (tmp_path / "comparison.md").read_text()


def test_the_run_time_of_every_run_read_is_summed_stopped_and_superseded_ones_too(tmp_path: Path):
    """A study's cost comes from the records: a killed run and a run a relaunch superseded cost time too."""
    for name, start, end, status in (("a", 0.0, 1800.0, "completed"), ("b", 100.0, 2800.0, "failed")):
        run_dir = write_run(tmp_path, name, "method=ia3" if name == "b" else "seed=1", status=status)
        record = json.loads((run_dir / "run.json").read_text())
        (run_dir / "run.json").write_text(json.dumps(record | {"started_at": start, "finished_at": end}))
    running = write_run(tmp_path, "c", "seed=2", status="running")  # no end yet: no time
    assert json.loads((running / "run.json").read_text())["finished_at"] is None
    compare.compare([tmp_path], out=tmp_path / "out")
    text = (tmp_path / "out" / "comparison.md").read_text()
    assert "Run time: 2 runs, 1.25 h of run time in all" in text, "1800 s + 2700 s"
    assert "Run time: 2 runs, 1.25 h" in (tmp_path / "out" / "comparison.html").read_text()
