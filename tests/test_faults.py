"""Fault injection: a sweep where one job raises and another is killed loses nothing; a logger that cannot
start does not lose the run."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from research import compare
from research.pipeline import train
from research.runs.record import read_record
from tests.helpers import compose_cfg, kill_after_first_checkpoint, run_cli, small, start_cli

# Job 0 raises (rank 0 is refused), job 1 completes, job 2 is killed mid-training with the whole sweep.
# No hydra.sweep.dir: each launch gets the default outputs/train/multiruns/<time>, and launches of one task
# into those timestamped folders are one sweep (research/runs/sweep_root.py).
SWEEP = ["-m", "method.peft_config.r=0,4,8", "trainer.max_epochs=3", *small("data.num_examples=60"), "logger=csv"]
SWEEP += ["zero_shot=false", "resume=auto"]


def first_folder(parent: Path, proc: subprocess.Popen, timeout: float = 120) -> Path:
    """The sweep folder a launch creates under `parent`."""
    deadline = time.monotonic() + timeout
    while not parent.is_dir() or not any(parent.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "no sweep folder appeared"
        time.sleep(0.05)
    (folder,) = parent.iterdir()
    return folder


@pytest.mark.slow
def test_sweep_with_a_raising_and_a_killed_job_relaunches_only_the_missing_ones(tmp_path: Path):
    multiruns = tmp_path / "outputs" / "train" / "multiruns"
    proc = start_cli(*SWEEP, cwd=tmp_path)
    first = first_folder(multiruns, proc)
    killed = kill_after_first_checkpoint(proc, first / "2_lora_r8")
    assert killed["status"] == "running"
    assert read_record(first / "0_lora_r0")["status"] == "failed"  # the raise did not stop the sweep
    assert read_record(first / "1_lora_r4")["status"] == "completed"

    proc = run_cli(*SWEEP, cwd=tmp_path)  # the same command again: a new timestamped folder, the same sweep
    (second,) = set(multiruns.iterdir()) - {first}
    assert proc.returncode == 1, proc.stderr[-3000:]  # exit status = number of jobs that did not complete
    assert read_record(second / "0_lora_r0")["status"] == "failed"
    assert "method.peft_config.r=0 must be an integer > 0" in read_record(second / "0_lora_r0")["error"]
    skipped = json.loads((second / "1_lora_r4" / "skipped.json").read_text())
    assert skipped["completed_run"] == str(first / "1_lora_r4")
    assert not (second / "1_lora_r4" / "run.json").exists()  # not trained again
    resumed = read_record(second / "2_lora_r8")
    assert resumed["status"] == "completed"
    assert resumed["artifacts"]["resumed_from"] == str(first / "2_lora_r8" / "checkpoints" / "last.ckpt")
    assert resumed["sweep_root"] == str(multiruns)

    report = compare.build_report(compare.load_records([multiruns]))
    assert sorted(r["peft_config.r"] for r in report.runs) == [4, 8]  # each config once, no duplicate, none lost
    assert {r["run_dir"] for r in report.runs} == {str(first / "1_lora_r4"), str(second / "2_lora_r8")}
    assert [(r["status"], r["run_dir"]) for r in report.failed] == [("failed", str(second / "0_lora_r0"))]


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("logger.wandb.mode=onlin", "logger.wandb.mode='onlin'"),
        ("logger.wandb.save_dir={blocker}/wandb", "logger.wandb.save_dir="),  # a file where a dir must go
    ],
)
def test_wandb_that_cannot_start_falls_back_to_csv_and_says_so(tmp_path: Path, override: str, named: str):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    run_dir = tmp_path / "run"
    overrides = small("trainer.max_steps=2", "logger=wandb", "zero_shot=false", override.format(blocker=blocker))
    record = train(compose_cfg(*overrides, f"paths.output_dir={run_dir}"))
    assert record.status == "completed"
    note = read_record(run_dir)["artifacts"]["logger_fallback"]
    assert named in note and "logging metrics to CSV" in note
    assert (run_dir / "csv" / "version_0" / "metrics.csv").is_file()
