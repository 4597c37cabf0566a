"""Same seed + same config gives identical loss curves on CPU; secrets never reach the records."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from research.pipeline import train
from tests.helpers import FAST, compose_cfg, run_cli, small


def losses(run_dir: Path) -> list[float]:
    rows = csv.DictReader((run_dir / "csv" / "version_0" / "metrics.csv").open())
    return [float(r["train/loss"]) for r in rows if r.get("train/loss")]


@pytest.mark.parametrize("method", ["lora", "full"])
def test_same_seed_same_config_gives_identical_loss_curves(tmp_path: Path, method: str):
    overrides = small(
        f"method={method}", "trainer.max_steps=6", "trainer.log_every_n_steps=1", "trainer.deterministic=true"
    )
    overrides += ["logger=csv", "zero_shot=false", "test=false", "callbacks=none"]
    runs = [tmp_path / "a", tmp_path / "b"]
    for run_dir in runs:
        train(compose_cfg(*overrides, f"paths.output_dir={run_dir}"))
    first, second = (losses(r) for r in runs)
    assert len(first) == 6
    assert first == second  # bit-identical, not approximately equal


def test_planted_api_key_never_reaches_records_configs_or_logs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    secret = "planted-secret-0123456789abcdef0123456789abcdef"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    proc = run_cli(*FAST, "method=lora", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert secret not in proc.stdout + proc.stderr
    leaked = [p for p in tmp_path.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]
    assert not leaked, f"the key was written to {leaked}"
