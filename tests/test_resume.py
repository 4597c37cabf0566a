"""A run killed with SIGKILL mid-training and relaunched with resume=auto ends exactly where an
uninterrupted run of the same seed ends (CPU, deterministic mode): same weights, same test metrics."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from research.pipeline import train
from research.tracking.record import read_record
from tests.conftest import ROOT, compose_cfg, small
from tests.test_train import run_cli

EPOCHS = 3
OVERRIDES = [
    f"trainer.max_epochs={EPOCHS}",
    "trainer.deterministic=true",
    *small("data.num_examples=100"),
    "logger=csv",
    "zero_shot=false",
]


def start_cli(*args: str, cwd: Path, log: Path | None = None) -> subprocess.Popen:
    """`python -m research.train` in the background; stdout and stderr to `log` (a file: a pipe nobody reads
    would fill up and stall the run)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline", "PYTHONPATH": str(ROOT)}
    out = log.open("w") if log else subprocess.DEVNULL
    return subprocess.Popen(
        [sys.executable, "-m", "research.train", *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT
    )


def kill_after_first_checkpoint(
    proc: subprocess.Popen, run_dir: Path, sig: int = signal.SIGKILL, timeout: float = 300
) -> dict:
    """Send `sig` (default SIGKILL: nothing flushed) as soon as run.json records a checkpoint (end of epoch
    0), i.e. mid-training with steps done, then wait for the process to end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        record = read_record(run_dir) if (run_dir / "run.json").exists() else None
        if record and record["progress"] and (run_dir / "checkpoints" / "last.ckpt").is_file():
            proc.send_signal(sig)
            proc.wait(timeout=120)
            return read_record(run_dir)
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"no checkpoint was recorded in time (exit code {proc.poll()})")


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
