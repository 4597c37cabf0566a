"""SIGTERM (how SLURM preempts) and SIGINT (Ctrl+C) mid-training: the run is recorded `interrupted`, its
loggers are closed, the process exits non-zero (128 + signal), and resume=auto continues it. In a sweep the
interrupted job is recorded, the jobs after it do not start, the table is printed and the exit status counts
every job that did not complete."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from research.runs.record import read_record
from tests.helpers import kill_after_first_checkpoint, run_cli, small, start_cli

RUN = ["trainer.max_epochs=3", *small(), "logger=csv", "zero_shot=false"]


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signalled_run_is_recorded_interrupted_exits_nonzero_and_resumes(tmp_path: Path, sig: signal.Signals):
    stopped, log = tmp_path / "runs" / "1_stopped", tmp_path / "stopped.log"
    proc = start_cli(*RUN, f"hydra.run.dir={stopped}", cwd=tmp_path, log=log)
    record = kill_after_first_checkpoint(proc, stopped, sig=sig)
    assert proc.returncode == 128 + sig, log.read_text()[-3000:]
    assert (record["status"], record["error"]) == ("interrupted", f"interrupted by {sig.name}")
    assert record["progress"]["checkpoint_epoch"] == 0 and record["finished_at"]
    assert f"interrupted by {sig.name}, recorded in {stopped / 'run.json'}" in log.read_text()
    assert "Traceback" not in log.read_text()
    metrics = (stopped / "csv" / "version_0" / "metrics.csv").read_text()
    assert metrics.splitlines()[1].startswith("0,"), "the CSV logger was closed with epoch 0 in it"

    resumed = tmp_path / "runs" / "2_resumed"
    proc = run_cli(*RUN, "resume=auto", f"hydra.run.dir={resumed}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = read_record(resumed)
    assert done["status"] == "completed"
    assert done["artifacts"]["resumed_from"] == str(stopped / "checkpoints" / "last.ckpt")


@pytest.mark.slow
def test_a_run_stopped_in_its_final_test_keeps_its_training_cost_and_validation_when_resumed(tmp_path: Path):
    """SIGTERM once fit has ended (its weights are saved) while the final test generates: resume=auto into
    the same folder continues from the checkpoint of fit's end, which trains nothing. The record keeps the
    first attempt's fit, validation and training seconds, its throughput and its validation scores."""
    run_dir, log = tmp_path / "run", tmp_path / "stopped.log"
    args = [
        *("trainer.max_epochs=1", "data.num_examples=400", "data.train_limit=16", "data.eval_limit=4"),
        *("generation.max_new_tokens=64", "logger=csv", "zero_shot=false", "resume=auto", f"hydra.run.dir={run_dir}"),
    ]
    proc = start_cli(*args, cwd=tmp_path, log=log)
    deadline = time.monotonic() + 300
    while proc.poll() is None and not list((run_dir / "weights").glob("*.safetensors")):
        assert time.monotonic() < deadline, "fit did not end in time"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM, log.read_text()[-3000:]
    first = read_record(run_dir)
    assert first["status"] == "interrupted" and first["timing"]["train_tokens_per_s"] > 0

    proc = run_cli(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = read_record(run_dir)
    assert done["status"] == "completed" and done["artifacts"]["resumed_from"].endswith("last.ckpt")
    fit_cost = ("fit_s", "val_s", "train_s", "train_tokens_per_s")
    assert {k: done["timing"][k] for k in fit_cost} == {k: first["timing"][k] for k in fit_cost}
    validation = {k: v for k, v in first["metrics"].items() if k.startswith("val/")}
    assert validation and validation.items() <= done["metrics"].items()
    assert "test/loss" in done["metrics"]


@pytest.mark.slow
def test_a_sigterm_stops_a_sweep_prints_its_table_and_counts_what_did_not_complete(tmp_path: Path):
    sweep = ["method.peft_config.r=0,4,8", *RUN, "resume=auto", f"hydra.sweep.dir={tmp_path / 'sweep'}", "-m"]
    log = tmp_path / "sweep.log"
    proc = start_cli(*sweep, cwd=tmp_path, log=log)
    kill_after_first_checkpoint(proc, tmp_path / "sweep" / "1_lora_r4", sig=signal.SIGTERM)
    out = log.read_text()
    assert proc.returncode == 3, out[-3000:]  # job 0 failed (rank 0 refused), 1 interrupted, 2 not started
    assert "3 of 3 jobs did not complete: 1 failed, 1 interrupted, 1 not started" in out
    assert f"Sweep {tmp_path / 'sweep'} (2 runs)" in out and "interrupted" in out.split("(2 runs)")[1]
    assert "not started: the sweep was stopped by SIGTERM" in out
    assert read_record(tmp_path / "sweep" / "1_lora_r4")["status"] == "interrupted"
    assert read_record(tmp_path / "sweep" / "2_lora_r8") is None

    proc = run_cli(*sweep, cwd=tmp_path)  # the same sweep folder again: the interrupted job continues
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 of 3 jobs did not complete: 1 failed" in proc.stdout
    resumed = read_record(tmp_path / "sweep" / "1_lora_r4")
    assert resumed["status"] == "completed"
    assert resumed["artifacts"]["resumed_from"] == str(tmp_path / "sweep" / "1_lora_r4" / "checkpoints" / "last.ckpt")
    assert read_record(tmp_path / "sweep" / "2_lora_r8")["status"] == "completed"
