"""run.json: atomic writes, a hash of what determines the result, no secrets."""

from __future__ import annotations

import json
import os
from pathlib import Path

from research.tracking.record import RunRecord, config_hash, read_record, write_json_atomic


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
