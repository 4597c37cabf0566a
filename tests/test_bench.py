"""Smoke test of the benchmark harness (no timed assertions: timings are the harness's output, not a
property to test): the real subprocess jobs, Lightning, peft and HF Trainer, with 1-2 steps."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from research.bench.__main__ import main
from research.bench.options import Options
from research.bench.padding import padding_share
from research.bench.report import TARGETS
from research.pipeline import build
from tests.helpers import compose_cfg, small


def test_bench_writes_json_and_markdown_with_positive_finite_ratios(tmp_path: Path, capsys) -> None:
    failed = main(
        ["--model", "tiny_llama", "--methods", "lora", "--steps", "2", "--warmup", "1", "--repeats", "2",
         "--gen-tokens", "4", "--gen-batch", "4", "--eval-rows", "6", "--no-padding", "--out", str(tmp_path),
         "data.num_examples=80", "data.eval_batch_size=4", "generation.max_new_tokens=6",
         "+model.config.initializer_range=0.2"]
    )  # fmt: skip
    assert failed == 0, (tmp_path / "logs").glob("*.log")
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report == {**report, **json.loads(capsys.readouterr().out)}  # stdout carries the same report
    assert report["meta"]["threads"] == 1 and report["meta"]["model"] == "tiny_llama"

    lora = report["methods"]["lora"]
    assert lora["params"]["trainable"] < lora["params"]["total"]
    assert lora["step_s"]["n"] == 2 * 2  # timed steps x repeats of ours
    for value in (lora["tokens_per_s"], lora["tokens_per_cpu_s"], lora["generation_tokens_per_s"]):
        assert value > 0 and math.isfinite(value)
    assert set(lora["baselines"]) == {"manual", "hf"}
    for baseline in lora["baselines"].values():
        for ratio in (baseline["ratio"], baseline["cpu_ratio"], *baseline["ratios"], *baseline["cpu_ratios"]):
            assert ratio > 0 and math.isfinite(ratio)
        # every run started from the same weights and seed: the loss curves agree
        assert baseline["loss_gap"] <= TARGETS["loss_curve_gap"]
    for run in (lora, *lora["baselines"].values()):
        assert 0 < run["ceiling_fraction"]["cpu"] < 2 and 0 < run["ceiling_fraction"]["wall"] < 2
    assert lora["memory"]["train_peak_rss_mb"] > 0 and lora["memory"]["model_mb"] > 0
    # every runner trained the same batches: same token counts in every run
    segments = report["raw"]["lora"]["segments"]
    assert {s["runner"] for s in segments} == {"ours", "manual", "hf"}
    assert len({s["tokens"] for s in segments}) == 1
    assert {len(s["losses"]) for s in segments} == {3}  # warm-up + timed steps

    gen = report["generation"]
    assert gen["rows"] == 4 and gen["speedup"] > 0
    assert gen["outputs_equal_all"], gen["examples"]  # batched and per-example generation agree
    evaluation = report["evaluation"]
    assert evaluation["rows"] == 6 and evaluation["batch_size"] == 4 and evaluation["cpu_speedup"] > 0
    assert evaluation["outputs_equal_all"], evaluation["examples"]  # our evaluation and a plain generate loop agree
    assert evaluation["generation"]["max_new_tokens"] == 6  # the run's settings, not the generation workload's
    assert report["matmul_ceiling"]["flop_per_cpu_s"] > 0
    assert set(report["startup"]["seconds"]) == {"peftlab --help", "train --help", "config error"}
    assert all(0 < s < 60 for s in report["startup"]["seconds"].values())  # each command ended as expected
    names = {t["target"].split(" ")[0] for t in report["targets"]}
    assert names >= {"ours_vs_manual", "ours_vs_hf", "loss_curve_gap", "evaluation_vs_loop", "startup_s"}
    markdown = (tmp_path / "bench.md").read_text()
    assert "| lora |" in markdown and "Evaluation (6 test examples, batch 4" in markdown
    assert "Startup (best of 3" in markdown


def test_length_grouping_reduces_padding_on_the_real_train_loader() -> None:
    _, datamodule = build(compose_cfg(*small("method=lora")))
    share = padding_share(datamodule)
    assert share["grouped"]["real_tokens"] == share["random"]["real_tokens"]  # same examples, one epoch
    assert share["grouped"]["padded_pct"] < share["random"]["padded_pct"]


def test_bad_options_fail_naming_the_option() -> None:
    with pytest.raises(ValueError, match="--steps=0"):
        Options(steps=0)
    with pytest.raises(ValueError, match="--methods.*nope"):
        Options(methods=["nope"])
    with pytest.raises(ValueError, match="--baselines"):
        Options(baselines=["keras"])
