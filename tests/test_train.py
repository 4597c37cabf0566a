"""End to end through the real command line: Hydra multirun, Lightning, W&B offline, run.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import FAST, run_cli


def test_two_method_multirun_writes_two_records_and_two_wandb_runs(tmp_path: Path):
    sweep = tmp_path / "sweep"
    proc = run_cli("-m", "method=lora,prompt_tuning", *FAST, f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]

    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/run.json"))]
    assert [r["method"] for r in records] == ["lora", "prompt_tuning"]
    for r in records:
        assert r["status"] == "completed"
        assert r["schema"] == 1 and r["config_hash"] and r["versions"]["torch"].startswith("2.13")
        assert {"test/rouge1", "test/rouge2", "test/rougeL", "test/rougeLsum", "zero_shot/rouge1"} <= set(r["metrics"])
        assert 0 < r["params"]["trainable"] < r["params"]["total"]
        assert r["timing"]["train_s"] > 0 and r["memory"]["peak_rss_mb"] > 0
        timing = r["timing"]  # training apart from the validation inside fit (which generates text)
        assert timing["val_s"] > 0 and timing["train_s"] + timing["val_s"] == pytest.approx(timing["fit_s"])
        assert r["config"]["method"]["name"] == r["method"]
        weights = Path(r["artifacts"]["weights_dir"])
        assert (weights / "adapter_model.safetensors").exists(), "PEFT methods save only the adapter"
        assert r["artifacts"]["weights_bytes"] < 1_000_000

    wandb_runs = sorted(sweep.glob("*/wandb/offline-run-*"))
    assert len(wandb_runs) == 2, "each job must finish its own W&B run"
    assert wandb_runs[0].name.rsplit("-", 1)[1] != wandb_runs[1].name.rsplit("-", 1)[1]
    assert "Sweep" in proc.stdout and "1_prompt_tuning " in proc.stdout, "the end-of-sweep table is printed"


def test_failed_run_is_recorded_with_its_error(tmp_path: Path):
    run_dir = tmp_path / "run"
    proc = run_cli("method=bitfit", *FAST, "logger=csv", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode != 0
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "failed"
    assert "this model has no biases" in record["error"]
    assert record["finished_at"] >= record["started_at"]
