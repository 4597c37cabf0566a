"""Two launches of the same sweep folder at once: each job folder is claimed before its job runs, so no job is
trained twice and no record is written over, and a job of another config runs in a folder of its own instead
of being skipped; a claim whose holder is gone (a dead or reused pid, a reboot, an unreadable or another
host's lock no longer refreshed) is taken over, saying so, one held by a live process is respected and named."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.pipeline import train
from research.runs import claims
from research.runs.claims import LOCK_FILE, STALE_AFTER_S, active_holder, claimed, holder
from research.runs.record import read_record
from tests.helpers import ROOT, compose_cfg, small, start_cli

HOLD = """
import sys, time
from pathlib import Path
from research.runs import claims
claims.HEARTBEAT_S = 0.2
with claims.claimed(Path(sys.argv[1]), "cfg") as other:
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


def write_lock(job_dir: Path, age_s: float = 0.0, text: str | None = None, **named: object) -> Path:
    """A job.lock as another process (or a hand, or another version) left it, last refreshed `age_s` ago."""
    lock = job_dir / LOCK_FILE
    lock.write_text(text if text is not None else json.dumps({"claimed_at": time.time() - age_s, **named}))
    os.utime(lock, (time.time() - age_s, time.time() - age_s))
    return lock


def this_host(pid: int, boot_id: str = "") -> dict[str, object]:
    """What a holder on this host records of itself: the host, its boot, and pid `pid`'s start time (field 22
    of /proc/<pid>/stat)."""
    started = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot_id = boot_id or Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    return {"pid": pid, "host": socket.gethostname(), "boot_id": boot_id, "started": started}


def taken_over(job_dir: Path, caplog: pytest.LogCaptureFixture) -> str:
    """Claim `job_dir`, which must succeed (the claim found there is stale); the warning that says so."""
    with caplog.at_level(logging.WARNING, logger=claims.__name__), claimed(job_dir) as other:
        assert other is None and holder(job_dir / LOCK_FILE).is_me()
    (message,) = [r.getMessage() for r in caplog.records if "taking over" in r.getMessage()]
    return message


@pytest.mark.parametrize("pid", [1, os.getppid()], ids=["pid 1", "the test's parent"])
def test_a_lock_naming_a_live_pid_of_another_process_is_taken_over(tmp_path: Path, caplog, pid: int):
    """Pid reuse: the pid is alive, but its start time is not the holder's. Before, honoured forever."""
    recorded = this_host(pid)
    lock = write_lock(tmp_path, **recorded | {"started": recorded["started"] + 1})
    assert f"taking over the stale claim {lock}: pid {pid} now belongs to another process" in taken_over(
        tmp_path, caplog
    )


def test_a_lock_from_before_this_hosts_restart_is_taken_over(tmp_path: Path, caplog):
    write_lock(tmp_path, **this_host(os.getppid(), boot_id="another-boot"))
    assert "this host has restarted since it was claimed" in taken_over(tmp_path, caplog)


def test_another_hosts_claim_is_respected_while_refreshed_and_taken_over_once_old(tmp_path: Path, caplog):
    lock = write_lock(tmp_path, age_s=STALE_AFTER_S - 60, pid=1, host="another-node", config_hash="cfg")
    with claimed(tmp_path) as other:
        assert (other.pid, other.host, other.config_hash) == (1, "another-node", "cfg")
        assert "pid 1 on another-node since " in other.describe(lock) and str(lock) in other.describe(lock)
    write_lock(tmp_path, age_s=7 * 86400, pid=1, host="another-node")  # the 7-day-old claim
    assert f"taking over the stale claim {lock}: not refreshed for 7 days (pid 1 on another-node" in taken_over(
        tmp_path, caplog
    )


def test_an_unreadable_lock_is_respected_while_fresh_and_taken_over_once_old(tmp_path: Path, caplog):
    lock = write_lock(tmp_path, text="edited by hand")
    with claimed(tmp_path) as other:
        assert other.host == claims.UNREADABLE and f"{lock} cannot be read" in other.describe(lock)
    assert lock.read_text() == "edited by hand"
    write_lock(tmp_path, age_s=STALE_AFTER_S + 60, text="edited by hand")
    assert f"taking over the stale claim {lock}: not refreshed for 11 min ({lock} cannot be read" in taken_over(
        tmp_path, caplog
    )


def test_a_live_holder_on_this_host_is_respected_however_old_and_keeps_its_claim_fresh(tmp_path: Path):
    """The holder is checked alive (its pid and start time): no age limit; its heartbeat refreshes the lock's
    mtime, which is what another host goes by."""
    proc = hold_in_another_process(tmp_path)
    try:
        lock = write_lock(tmp_path, age_s=7 * 86400, text=(tmp_path / LOCK_FILE).read_text())
        with claimed(tmp_path) as other:
            assert (other.pid, other.config_hash) == (proc.pid, "cfg"), "a live holder blocks, however old"
        deadline = time.monotonic() + 60
        while lock.stat().st_mtime < time.time() - 60 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert time.time() - lock.stat().st_mtime < 60, "the holder's heartbeat refreshed its lock"
    finally:
        proc.kill()
        proc.wait()


def launch_twice(tmp_path: Path, grid: str, first_job: str, *second_only: str) -> tuple[Path, int, tuple[str, str]]:
    """Two real launches of the `grid` sweep into one folder, the second (with `second_only` too) started
    while the first trains `first_job`; the folder, the first launch's pid and both logs. Whichever launch
    ended first may have left a job to the other, still running it: only then may it exit non-zero."""
    sweep = tmp_path / "sweep"
    # Jobs long enough that the second launch (its imports take seconds on a busy machine) meets job 0 running.
    args = [grid, "trainer.max_epochs=10", *small(), "logger=csv", "zero_shot=false", f"hydra.sweep.dir={sweep}", "-m"]
    first = start_cli(*args, cwd=tmp_path, log=tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while not (sweep / first_job / "run.json").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    second = start_cli(*second_only, *args, cwd=tmp_path, log=tmp_path / "second.log")
    codes = first.wait(timeout=600), second.wait(timeout=600)
    logs = (tmp_path / "first.log").read_text(), (tmp_path / "second.log").read_text()
    assert 0 in codes, logs
    for code, log in zip(codes, logs, strict=True):
        assert code == 0 or "running in another launch" in log, log[-3000:]
    return sweep, first.pid, logs


@pytest.mark.slow
def test_two_concurrent_launches_of_one_sweep_folder_train_each_job_once(tmp_path: Path):
    sweep, first_pid, logs = launch_twice(tmp_path, "method.peft_config.r=4,8,16", "0_lora_r4")
    jobs = sorted(p.name for p in sweep.iterdir() if p.is_dir())
    assert jobs == ["0_lora_r4", "1_lora_r8", "2_lora_r16"]
    for job in jobs:
        assert read_record(sweep / job)["status"] == "completed", logs
        assert [p.name for p in (sweep / job / "csv").iterdir()] == ["version_0"], f"{job} was trained twice"
        assert not (sweep / job / LOCK_FILE).exists()
    assert f"skipped: {sweep / '0_lora_r4'} is being run by another launch: pid {first_pid}" in logs[1]


@pytest.mark.slow
def test_two_concurrent_launches_of_other_values_into_one_sweep_folder_run_every_config(tmp_path: Path):
    """Issue 28: launch A (seed=1,2) and, while it trains, launch B (the same with method.lr=0.001) into one
    folder: Hydra names both launches' jobs 0_lora_seed1 and 1_lora_seed2. Before, each skipped the other's
    claimed job as "being run by another launch": two of the four configs never ran."""
    sweep, _, logs = launch_twice(tmp_path, "seed=1,2", "0_lora_seed1", "method.lr=0.001")
    records = {p.parent: read_record(p.parent) for p in sweep.glob("*/run.json")}
    runs = sorted((r["config"]["method"]["lr"], r["config"]["seed"], r["status"]) for r in records.values())
    done = "completed"
    assert runs == [(0.001, 1, done), (0.001, 2, done), (0.003, 1, done), (0.003, 2, done)], logs
    for job, record in records.items():
        assert [p.name for p in (job / "csv").iterdir()] == ["version_0"], f"{job} was trained twice"
        assert job.name in ("0_lora_seed1", "1_lora_seed2") or job.name.endswith(f"_{record['config_hash']}")
    assert not list(sweep.glob(f"*/{LOCK_FILE}"))
    assert "is claimed by a launch of another config: pid" in logs[0] + logs[1], "the launches met a claim"
    assert "is being run by another launch" not in logs[0] + logs[1], "no config skipped for another's"


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
