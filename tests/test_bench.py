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
from research.pipeline import build
from tests.conftest import compose_cfg, small


def test_bench_writes_json_and_markdown_with_positive_finite_ratios(tmp_path: Path, capsys) -> None:
    failed = main(
        ["--methods", "lora", "--steps", "2", "--warmup", "1", "--repeats", "2", "--gen-tokens", "4",
         "--gen-batch", "4", "--no-padding", "--out", str(tmp_path), "data.num_examples=80"]
    )  # fmt: skip
    assert failed == 0, (tmp_path / "logs").glob("*.log")
    report = json.loads((tmp_path / "bench.json").read_text())
    assert report == {**report, **json.loads(capsys.readouterr().out)}  # stdout carries the same report
    assert report["meta"]["threads"] == 1 and report["meta"]["model"] == "tiny_t5"

    lora = report["methods"]["lora"]
    assert lora["params"]["trainable"] < lora["params"]["total"]
    assert lora["step_s"]["n"] == 2 * 2  # timed steps x repeats of ours
    for value in (lora["tokens_per_s"], lora["tokens_per_cpu_s"], lora["generation_tokens_per_s"]):
        assert value > 0 and math.isfinite(value)
    assert set(lora["baselines"]) == {"manual", "hf"}
    for baseline in lora["baselines"].values():
        for ratio in (baseline["ratio"], baseline["cpu_ratio"], *baseline["ratios"], *baseline["cpu_ratios"]):
            assert ratio > 0 and math.isfinite(ratio)
    assert lora["memory"]["train_peak_rss_mb"] > 0 and lora["memory"]["model_mb"] > 0
    # every runner trained the same batches: same token counts in every run
    segments = report["raw"]["lora"]["segments"]
    assert {s["runner"] for s in segments} == {"ours", "manual", "hf"}
    assert len({s["tokens"] for s in segments}) == 1

    gen = report["generation"]
    assert gen["rows"] == 4 and gen["speedup"] > 0
    assert gen["outputs_equal_all"], gen["examples"]  # batched and per-example generation agree
    assert {t["target"].split(" ")[0] for t in report["targets"]} >= {"ours_vs_manual", "ours_vs_hf"}
    assert "| lora |" in (tmp_path / "bench.md").read_text()


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
