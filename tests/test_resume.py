"""A run killed with SIGKILL mid-training and relaunched with resume=auto ends exactly where an
uninterrupted run of the same seed ends (CPU, deterministic mode): same weights, same test metrics."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from safetensors.torch import load_file

from research.pipeline import train
from research.runs.record import read_record
from tests.helpers import compose_cfg, kill_after_first_checkpoint, run_cli, small, start_cli

EPOCHS = 3
OVERRIDES = [
    f"trainer.max_epochs={EPOCHS}",
    "trainer.deterministic=true",
    *small("data.num_examples=100"),
    "logger=csv",
    "zero_shot=false",
]


def weights(run_dir: Path) -> dict:
    return {k: v for f in sorted((run_dir / "weights").glob("*.safetensors")) for k, v in load_file(f).items()}


@pytest.mark.parametrize("method", ["lora", "full"])
def test_sigkill_then_resume_auto_equals_an_uninterrupted_run(tmp_path: Path, method: str):
    args = [f"method={method}", *OVERRIDES]
    reference = tmp_path / "reference" / "run"
    train(compose_cfg(*args, f"paths.output_dir={reference}"))

    killed = tmp_path / "runs" / "1_killed"
    record = kill_after_first_checkpoint(start_cli(*args, f"hydra.run.dir={killed}", cwd=tmp_path), killed)
    assert record["status"] == "running"  # a complete file, not a truncated one
    assert record["progress"]["checkpoint_epoch"] < EPOCHS - 1
    assert (killed / "checkpoints" / "last.ckpt").is_file()

    resumed = tmp_path / "runs" / "2_resumed"  # a sibling: resume=auto finds the killed run by config hash
    train(compose_cfg(*args, "resume=auto", f"paths.output_dir={resumed}"))
    done, ref = read_record(resumed), read_record(reference)
    assert done["artifacts"]["resumed_from"] == str(killed / "checkpoints" / "last.ckpt")
    assert done["config_hash"] == ref["config_hash"]

    # Tolerance: exact. Same (seed, epoch) batches and dropout masks, optimizer and scheduler restored.
    final, expected = weights(resumed), weights(reference)
    assert final.keys() == expected.keys()
    for name, tensor in expected.items():
        assert final[name].equal(tensor), name
    test_metrics = {k: v for k, v in ref["metrics"].items() if k.startswith("test/") and not k.endswith("eval_s")}
    assert {k: done["metrics"][k] for k in test_metrics} == test_metrics


def test_resume_auto_without_an_unfinished_run_starts_fresh(tmp_path: Path):
    run_dir = tmp_path / "runs" / "only"
    proc = run_cli(
        "method=lora",
        *small("trainer.max_steps=2"),
        "logger=none",
        "resume=auto",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "completed" and "resumed_from" not in record["artifacts"]


def test_a_completed_runs_folder_given_again_is_left_as_it_is_unless_overwrite(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """`resume=auto hydra.run.dir=<completed run>` used to train again in place, replacing its record and
    checkpoint; now the run is left whole and said so, and `overwrite=true` is how to train it again."""
    caplog.set_level(logging.INFO, logger="research")
    run = small("method=lora", "trainer.max_steps=2", "logger=none", "callbacks=none", f"paths.output_dir={tmp_path}")
    first = train(compose_cfg(*run))
    written = (tmp_path / "run.json").read_bytes()
    again = train(compose_cfg(*run, "resume=auto"))
    assert (tmp_path / "run.json").read_bytes() == written and again.metrics == first.metrics
    assert f"{tmp_path} holds this config's completed run: left as it is (overwrite=true" in caplog.text
    retrained = train(compose_cfg(*run, "overwrite=true"))
    assert retrained.status == "completed" and retrained.started_at > first.started_at
    assert read_record(tmp_path)["started_at"] == retrained.started_at
