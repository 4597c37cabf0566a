"""Two launches of the same sweep folder at once: each job folder is claimed before its job runs, so no job is
trained twice and no record is written over; a claim left by a dead process is taken over, one held by a
live process (or one that cannot be checked) is respected and named."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.pipeline import train
from research.runs.claims import LOCK_FILE, Holder, active_holder, claimed, holder
from research.runs.record import read_record
from tests.helpers import ROOT, compose_cfg, small, start_cli

HOLD = """
import sys, time
from pathlib import Path
from research.runs.claims import claimed
with claimed(Path(sys.argv[1])) as other:
    assert other is None
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_another_process(job_dir: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(job_dir)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_claim_is_held_for_the_body_and_released_after(tmp_path: Path):
    with claimed(tmp_path) as other:
        assert other is None
        assert holder(tmp_path / LOCK_FILE).is_me()
    assert not (tmp_path / LOCK_FILE).exists()
    with pytest.raises(RuntimeError), claimed(tmp_path):
        raise RuntimeError("a failing job releases its claim too")
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_live_claim_is_respected_and_a_dead_ones_taken_over(tmp_path: Path):
    proc = hold_in_another_process(tmp_path)
    try:
        with claimed(tmp_path) as other:
            assert other is not None and other.pid == proc.pid
            assert f"pid {proc.pid} on " in other.describe(tmp_path / LOCK_FILE)
            assert str(tmp_path / LOCK_FILE) in other.describe(tmp_path / LOCK_FILE)
        assert holder(tmp_path / LOCK_FILE).pid == proc.pid, "not released by the one that did not hold it"
        assert active_holder(tmp_path).pid == proc.pid
    finally:
        proc.send_signal(signal.SIGKILL)  # dies holding it: the lock file stays behind
        proc.wait()
    assert holder(tmp_path / LOCK_FILE).pid == proc.pid and active_holder(tmp_path) is None
    with claimed(tmp_path) as other:
        assert other is None and holder(tmp_path / LOCK_FILE).is_me()
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_claim_that_cannot_be_checked_is_respected(tmp_path: Path):
    elsewhere = Holder(pid=1, host="another-node", claimed_at=time.time())
    (tmp_path / LOCK_FILE).write_text(json.dumps(elsewhere.__dict__))
    with claimed(tmp_path) as other:
        assert other == elsewhere
    (tmp_path / LOCK_FILE).write_text("edited by hand")
    with claimed(tmp_path) as other:
        assert other.host == "<unreadable lock>"
    assert (tmp_path / LOCK_FILE).read_text() == "edited by hand"


@pytest.mark.slow
def test_two_concurrent_launches_of_one_sweep_folder_train_each_job_once(tmp_path: Path):
    sweep = tmp_path / "sweep"
    # Jobs long enough that the second launch (its imports take seconds on a busy machine) meets job 0 running.
    args = ["method.peft_config.r=4,8,16", "trainer.max_epochs=10", *small(), "logger=csv", "zero_shot=false"]
    args += [f"hydra.sweep.dir={sweep}", "-m"]
    first = start_cli(*args, cwd=tmp_path, log=tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while not (sweep / "0_lora_r4" / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    second = start_cli(*args, cwd=tmp_path, log=tmp_path / "second.log")  # while the first trains job 0
    codes = first.wait(timeout=600), second.wait(timeout=600)
    logs = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()

    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_lora_r4", "1_lora_r8", "2_lora_r16"]
    for job in jobs:
        assert read_record(sweep / job)["status"] == "completed", logs
        assert [p.name for p in (sweep / job / "csv").iterdir()] == ["version_0"], f"{job} was trained twice"
        assert not (sweep / job / LOCK_FILE).exists()
    assert f"skipped: {sweep / '0_lora_r4'} is being run by another launch: pid {first.pid}" in logs[1]
    # Whichever launch ended first may have left a job to the other, still running it: it says so.
    assert 0 in codes, logs
    for code, log in zip(codes, logs, strict=True):
        assert code == 0 or "running in another launch" in log, log[-3000:]


def test_a_single_run_into_a_folder_another_launch_is_running_stops_before_anything_loads(tmp_path: Path):
    """Two single runs given one folder (hydra.run.dir twice): the second stops naming the first, and writes
    nothing there; before, both trained and overwrote one record, checkpoint and weights folder."""
    run_dir = tmp_path / "run"
    other = hold_in_another_process(run_dir)
    try:
        with pytest.raises(ValueError, match=rf"is being run by another launch: pid {other.pid} on "):
            train(compose_cfg(*small("logger=none", f"paths.output_dir={run_dir}")))
        assert sorted(p.name for p in run_dir.iterdir()) == [LOCK_FILE]
    finally:
        other.kill()
        other.wait()
