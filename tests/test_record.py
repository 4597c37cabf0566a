"""run.json: atomic, strict-JSON, world-readable writes; lenient reads (a bad record is skipped, once
warned); a hash of what determines the result; how a run ended (completed, failed, interrupted)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from research.runs.interrupts import Interrupted
from research.runs.record import RunRecord, config_hash, read_record, write_json_atomic
from tests.helpers import ROOT

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@t",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@t",
}


def test_atomic_write_leaves_no_temp_file_and_replaces_whole(tmp_path: Path):
    write_json_atomic(tmp_path / "run.json", {"a": 1})
    write_json_atomic(tmp_path / "run.json", {"b": 2})
    assert json.loads((tmp_path / "run.json").read_text()) == {"b": 2}
    assert os.listdir(tmp_path) == ["run.json"]


def test_hash_ignores_where_and_how_a_run_is_logged():
    base = {"seed": 1, "method": {"rank": 8}, "paths": {"output_dir": "/a"}, "logger": {"x": 1}}
    moved = {**base, "paths": {"output_dir": "/b"}, "logger": None}
    assert config_hash(base) == config_hash(moved)
    assert config_hash(base) != config_hash({**base, "method": {"rank": 16}})


def test_a_moved_function_keeps_the_config_hash_that_earlier_records_carry():
    """The schedule's function moved (research.optim -> research.loop.optim): a config naming it by either
    path hashes as records written before the move did (sha256 of the sorted JSON), so re-launched sweeps
    still skip their completed jobs and resume=auto still finds unfinished runs."""
    before = {"seed": 1, "scheduler": {"_target_": "research.optim.warmup_schedule", "name": "linear"}}
    now = {"seed": 1, "scheduler": {"_target_": "research.loop.optim.warmup_schedule", "name": "linear"}}
    recorded = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]
    assert config_hash(now) == config_hash(before) == recorded
    assert config_hash({**now, "seed": 2}) != recorded


def test_a_field_added_since_and_left_at_its_default_keeps_the_config_hash():
    """optimizer.head_lr came after records began: null (the method's rate, what every earlier run did) hashes as
    a record without the field did, so earlier runs are still skipped and resumed; a rate set is another config."""
    before = {"seed": 1, "optimizer": {"weight_decay": 0.0}}
    recorded = hashlib.sha256(json.dumps(before, sort_keys=True, default=str).encode()).hexdigest()[:16]
    now = {"seed": 1, "optimizer": {"weight_decay": 0.0, "head_lr": None}}
    assert config_hash(now) == config_hash(before) == recorded
    assert config_hash({**now, "optimizer": {"weight_decay": 0.0, "head_lr": 1e-3}}) != recorded
    assert now["optimizer"] == {"weight_decay": 0.0, "head_lr": None}, "the config itself is left as it was"


def test_record_lifecycle(tmp_path: Path):
    record = RunRecord.start({"seed": 3}, "lora", "tiny_t5", "synthetic")
    record.write(tmp_path)
    assert read_record(tmp_path)["status"] == "running"
    try:
        raise ValueError("method.peft_config.r=0 must be > 0")
    except ValueError as err:
        record.fail(err)
    record.write(tmp_path)
    saved = read_record(tmp_path)
    assert saved["status"] == "failed" and saved["error"] == "ValueError: method.peft_config.r=0 must be > 0"
    assert saved["seed"] == 3 and saved["schema"] == 1


def _valid(tmp_path: Path) -> Path:
    run_dir = tmp_path / "ok"
    RunRecord.start({"seed": 1}, "lora", "tiny_t5", "synthetic").write(run_dir)
    return run_dir


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ('{"status": "completed", "config_hash": "ab', "not readable JSON"),  # cut short by a full disk
        (b"\xff\xfe garbage", "not readable JSON"),
        ("[1, 2]", "a JSON list"),
        ('{"status": "completed"}', "missing or malformed config_hash"),
        ('{"config_hash": "x", "status": 3}', "status"),
    ],
)
def test_unreadable_record_is_skipped_with_one_warning_naming_it(tmp_path, caplog, content, why):
    run_dir = tmp_path / "bad"
    run_dir.mkdir()
    path = run_dir / "run.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with caplog.at_level(logging.WARNING, logger="research.runs.record"):
        assert read_record(run_dir) is None
        assert read_record(run_dir) is None
        assert read_record(_valid(tmp_path))["status"] == "running"
    (warning,) = caplog.records
    assert str(path) in warning.message and why in warning.message


def test_non_finite_values_are_written_as_null_and_named(tmp_path: Path):
    record = RunRecord.start({"seed": 1, "trainer": {"gradient_clip_val": math.inf}}, "lora", "t5", "synthetic")
    record.metrics = {"test/loss": math.nan, "val/loss": -math.inf, "test/rouge1": 0.5}
    record.write(tmp_path)
    text = (tmp_path / "run.json").read_text()
    saved = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    assert saved["metrics"] == {"test/loss": None, "val/loss": None, "test/rouge1": 0.5}
    assert saved["config"]["trainer"]["gradient_clip_val"] is None
    assert saved["non_finite_metrics"] == ["config.trainer.gradient_clip_val", "test/loss", "val/loss"]
    assert record.metrics["test/loss"] != record.metrics["test/loss"], "the record in memory keeps its values"


def test_record_is_world_readable_and_a_failed_write_names_the_file(tmp_path: Path):
    path = write_json_atomic(tmp_path / "run.json", {"a": 1})
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    with pytest.raises(ValueError):
        write_json_atomic(tmp_path / "run.json", {"a": math.nan})  # strict JSON, never silently NaN
    assert json.loads(path.read_text()) == {"a": 1} and os.listdir(tmp_path) == ["run.json"]
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError, match=f"could not write {blocker}/run.json"):
        write_json_atomic(blocker / "run.json", {"a": 1})


@pytest.mark.parametrize(
    ("raised", "status", "error"),
    [
        (Interrupted(signal.SIGTERM), "interrupted", "interrupted by SIGTERM"),
        (KeyboardInterrupt(), "interrupted", "interrupted by SIGINT"),
        (ValueError("bad"), "failed", "ValueError: bad"),
    ],
)
def test_recorded_says_how_the_run_ended(tmp_path: Path, raised: BaseException, status: str, error: str):
    record = RunRecord.start({"seed": 3}, "lora", "tiny_t5", "synthetic")
    with pytest.raises(type(raised)), record.recorded(tmp_path):
        assert read_record(tmp_path)["status"] == "running"
        raise raised
    saved = read_record(tmp_path)
    assert (saved["status"], saved["error"]) == (status, error)
    assert saved["finished_at"] >= saved["started_at"]


def test_a_stop_signal_inside_recorded_is_an_exit_status_of_128_plus_the_signal(tmp_path: Path):
    handler = signal.getsignal(signal.SIGTERM)
    record = RunRecord.start({"seed": 3}, "lora", "tiny_t5", "synthetic")
    with pytest.raises(Interrupted) as stop, record.recorded(tmp_path):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler raises first
    assert stop.value.code == 143 and read_record(tmp_path)["status"] == "interrupted"
    assert signal.getsignal(signal.SIGTERM) is handler, "the previous handler is back"


def test_a_record_names_peftlabs_version_and_a_checkouts_commit():
    record = RunRecord.start({}, "lora", "tiny_t5", "synthetic")
    assert record.versions["peftlab"] == importlib.metadata.version("peftlab")
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert record.git_commit == (head or None)


def test_installed_code_inside_another_repository_records_no_commit(tmp_path: Path):
    """A virtual environment inside some checkout: that repository's commit says nothing of the code that ran."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "commit", "-q", "--allow-empty", "-m", "x"], check=True, env=GIT_ENV)
    site = tmp_path / ".venv" / "lib" / "site-packages"
    shutil.copytree(ROOT / "research", site / "research", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from research.runs.record import git_commit; print(git_commit())"
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "None"
