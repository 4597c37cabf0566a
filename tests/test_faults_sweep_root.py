"""Skip-on-relaunch and resume=auto look only inside "the same sweep": the task's default timestamped
folders, or one folder named by hydra.sweep.dir launched into again. An unrelated sweep next door, even
with the same configs and a corrupt record, neither skips its jobs nor stops it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import open_dict

from research.runs.record import read_record
from research.runs.sweep_root import sweep_root
from tests.helpers import CONF, run_cli, small


@pytest.fixture
def multirun_job() -> Iterator[None]:
    """Leave Hydra's global job config as it was (unset): other tests train outside any multirun."""
    yield
    HydraConfig.instance().cfg = None


def as_multirun_job(*overrides: str) -> None:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.mode = RunMode.MULTIRUN
    HydraConfig.instance().set_config(cfg)


@pytest.mark.parametrize(
    ("sweep_dir", "root"),
    [
        (None, "outputs/train/multiruns"),  # conf/hydra/default.yaml: outputs/<task>/multiruns/<time>
        ("multirun/${now:%Y-%m-%d}/${now:%H-%M-%S}", "multirun"),  # Hydra's own default
        ("/data/sweeps/lora_ranks", "/data/sweeps/lora_ranks"),  # named: a sweep of its own
        ("runs/${now:%Y-%m-%d}_ranks/fold0", "runs"),
    ],
)
def test_sweep_root_is_the_folder_before_the_launch_time(multirun_job: None, sweep_dir: str | None, root: str):
    as_multirun_job(*([f"hydra.sweep.dir={sweep_dir}"] if sweep_dir else []))
    assert sweep_root() == (Path.cwd() / root).resolve()


def test_no_sweep_root_outside_a_multirun():
    assert sweep_root() is None


@pytest.mark.slow
def test_an_unrelated_sweep_next_to_a_corrupt_one_runs_all_its_jobs(tmp_path: Path):
    def launch(name: str):
        args = ["method.peft_config.r=4,8", *small("trainer.max_steps=2"), "logger=none", "zero_shot=false"]
        return run_cli(*args, f"hydra.sweep.dir={tmp_path / name}", "-m", cwd=tmp_path)

    assert launch("a").returncode == 0
    corrupt = tmp_path / "a" / "0_lora_r4" / "run.json"
    corrupt.write_text(corrupt.read_text()[:200])  # cut short, as a full disk or a copy leaves it

    proc = launch("b")  # the same configs, under the same parent: still its own sweep
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    for job in ("0_lora_r4", "1_lora_r8"):
        assert read_record(tmp_path / "b" / job)["status"] == "completed"
        assert not (tmp_path / "b" / job / "skipped.json").exists(), "nothing skipped for sweep a's runs"
    assert str(corrupt) not in proc.stdout + proc.stderr, "sweep b never even read sweep a's records"

    proc = launch("a")  # sweep a again: its unreadable job runs again, the completed one is skipped
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert f"skipping {corrupt}: not readable JSON" in proc.stdout  # Hydra logs to stdout
    assert read_record(tmp_path / "a" / "0_lora_r4")["status"] == "completed"
    assert "1 jobs skipped" in proc.stdout
    assert f"this config completed in {tmp_path / 'a' / '1_lora_r8'} (sweep {tmp_path / 'a'})" in proc.stdout


def test_a_later_launch_with_other_values_never_runs_over_an_earlier_run(tmp_path: Path):
    """The studies' grids: the usual rate launched alone, later one more rate alone into the same folder.
    Both jobs are Hydra's `0_lora` (job numbers restart; a value given once names no folder)."""

    def launch(lr: str):
        args = [f"method.lr={lr}", *small("trainer.max_steps=2"), "logger=none", "zero_shot=false"]
        return run_cli(*args, f"hydra.sweep.dir={tmp_path}", "-m", cwd=tmp_path)

    assert launch("1e-3").returncode == 0
    first = (tmp_path / "0_lora" / "run.json").read_bytes()
    proc = launch("3e-4")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert (tmp_path / "0_lora" / "run.json").read_bytes() == first, "the earlier run is kept whole"
    (own,) = [d for d in tmp_path.glob("0_lora_*") if (d / "run.json").exists()]
    record = read_record(own)
    assert (record["status"], record["config"]["method"]["lr"]) == ("completed", 3e-4)
    assert own.name == f"0_lora_{record['config_hash']}"

    proc = launch("3e-4")  # again: found in its own folder, skipped
    assert proc.returncode == 0 and "1 jobs skipped" in proc.stdout, proc.stdout[-2000:]
