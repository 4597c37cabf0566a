"""A full disk: checkpoints are whole or absent, run.json never points at a partial one, resume=auto skips a
truncated one (saying which), and a disk already full fails before anything runs, naming the folder."""

from __future__ import annotations

import logging
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from research.pipeline import train
from research.runs.checkpoints import unreadable
from research.runs.record import RunRecord, read_record
from tests.helpers import compose_cfg, run_cli, small


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs: room for a run's records and logs, not for a full fine-tune's 10 MB checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def fill(disk: Path) -> None:
    with (disk / "filler").open("wb") as fh:
        try:
            while True:
                fh.write(bytes(65536))
                fh.flush()
        except OSError:
            pass


def test_unreadable_tells_a_whole_checkpoint_from_a_cut_or_foreign_file(tmp_path: Path):
    whole = tmp_path / "whole.ckpt"
    torch.save({"state_dict": {"w": torch.ones(1000)}, "epoch": 0}, whole)
    assert unreadable(whole) is None
    cut = tmp_path / "cut.ckpt"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    assert "not a complete torch checkpoint" in unreadable(cut)
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(foreign, "w") as archive:
        archive.writestr("notes.txt", "hello")
    assert "without a torch data.pkl" in unreadable(foreign)
    (tmp_path / "empty.ckpt").write_bytes(b"")
    assert unreadable(tmp_path / "empty.ckpt")


class _Trap:
    """Unpickling this runs code: it would create the file named."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_unreadable_never_unpickles(tmp_path: Path):
    marker, ckpt = tmp_path / "code_ran", tmp_path / "trap.ckpt"
    torch.save({"payload": _Trap(marker)}, ckpt)
    assert unreadable(ckpt) is None
    assert not marker.exists()


def test_a_checkpoint_that_does_not_fit_fails_the_run_and_leaves_no_partial_file(small_disk: Path, tmp_path: Path):
    run_dir = small_disk / "runs" / "full"
    args = ["method=full", "trainer.max_epochs=1", *small(), "logger=csv", "zero_shot=false"]
    proc = run_cli(*args, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert proc.returncode == 1
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    message = f"could not write checkpoint {ckpt} (No space left on device)"
    assert message in proc.stderr
    record = read_record(run_dir)
    assert record["status"] == "failed" and message in record["error"]  # the record was written: space freed
    assert record["progress"] == {}, "run.json never names a checkpoint that is not whole"
    assert list((run_dir / "checkpoints").iterdir()) == [], "no truncated last.ckpt, no partial temp file"


def test_resume_auto_skips_a_truncated_checkpoint_and_names_it(tmp_path: Path, caplog):
    args = ["trainer.max_epochs=1", *small(), "logger=none", "zero_shot=false", "test=false"]
    runs = tmp_path / "runs"
    older = runs / "1_older"
    train(compose_cfg(*args, f"paths.output_dir={older}"))
    record = read_record(older) | {"status": "running"}  # as if killed after its last checkpoint
    RunRecord(**record).write(older)
    newer = runs / "2_newer"  # killed while a disk filled: a cut checkpoint (as Lightning alone leaves one)
    shutil.copytree(older, newer)
    RunRecord(**record | {"started_at": record["started_at"] + 1}).write(newer)
    ckpt = newer / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])
    (runs / "3_corrupt").mkdir()
    (runs / "3_corrupt" / "run.json").write_text('{"status": "runn')  # a record cut short next to them

    with caplog.at_level(logging.WARNING):
        done = train(compose_cfg(*args, "resume=auto", f"paths.output_dir={runs / '4_resumed'}"))
    assert done.status == "completed"
    assert done.artifacts["resumed_from"] == str(older / "checkpoints" / "last.ckpt")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(f"resume=auto: skipping {ckpt}: not a complete torch checkpoint" in w for w in warnings)
    assert any(f"skipping {runs / '3_corrupt' / 'run.json'}: not readable JSON" in w for w in warnings)

    with pytest.raises(ValueError, match=f"ckpt_path='{ckpt}': not a complete torch checkpoint"):
        train(compose_cfg(*args, f"ckpt_path={ckpt}", f"paths.output_dir={runs / '5_explicit'}"))


@pytest.mark.parametrize("mode", ["run", "sweep"])
def test_a_disk_full_at_start_fails_at_once_naming_the_folder(small_disk: Path, tmp_path: Path, mode: str):
    fill(small_disk)
    out = small_disk / "out"
    where = [f"hydra.run.dir={out}"] if mode == "run" else ["seed=1,2", f"hydra.sweep.dir={out}", "-m"]
    proc = run_cli(*small("trainer.max_steps=1"), "logger=none", *where, cwd=tmp_path)
    assert proc.returncode == 1
    field = "hydra.run.dir" if mode == "run" else "hydra.sweep.dir"
    assert f"Error: {field}='{out}' is not writable (No space left on device); choose another" in proc.stderr
    assert "Traceback" not in proc.stderr
