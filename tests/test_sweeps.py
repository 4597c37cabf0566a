"""Sweep configs in sweeps/sweep/: each composes through real Hydra and expands to its job list; a real
multirun survives a failing job, reports it in its exit status, and a re-launch skips what completed; the
learning-rate search is a real optuna study in a real database (sqlite; PostgreSQL when a server is given),
resumed after a kill and shared by concurrent launches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import FloatDistribution
from optuna.trial import FrozenTrial, TrialState

from hydra_plugins.peftlab_optuna.sweeper import distribution
from research import compare
from tests.helpers import CONF, ROOT, run_cli, start_cli

SWEEPS_DIR = ROOT / "sweeps"
BASIC = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"
EXPECTED = {  # sweep -> its jobs, each the overrides Hydra gives it
    "lora_rank": [[f"method.peft_config.r={r}"] for r in (1, 2, 4, 8, 16, 32, 64)],
    "methods": [
        [f"method={m}"] for m in ("full", "selective", "lora", "adapter", "prompt_tuning", "ia3", "prefix_tuning")
    ],
    "prompt_length": [[f"method.peft_config.num_virtual_tokens={n}"] for n in (1, 5, 20, 50, 100)],
    "seeds": [[f"seed={s}"] for s in (1, 2, 3)],
}
TINY = [
    "trainer.max_epochs=1",
    "data.num_examples=40",
    "data.eval_limit=4",
    "data.test_limit=4",
    "generation.max_new_tokens=8",
    "zero_shot=false",
    "logger=csv",
    "callbacks=none",
]


def compose_sweep(*overrides: str) -> DictConfig:
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose("train", overrides=list(overrides), return_hydra_config=True)


def expand(cfg: DictConfig) -> list[list[str]]:
    """The jobs Hydra's BasicSweeper launches for this config's sweeper params."""
    overrides = [f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()]
    (batch,) = BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)
    return batch


def test_every_sweep_file_is_tested():
    assert sorted(p.stem for p in (SWEEPS_DIR / "sweep").glob("*.yaml")) == sorted(
        [*EXPECTED, "model_size", "lr_search"]
    )


def test_the_sweep_group_of_conf_is_sweeps_sweep():
    """conf/sweep links to sweeps/sweep: a plain group of conf/, so it needs no search-path entry."""
    assert (CONF / "sweep").resolve() == (SWEEPS_DIR / "sweep").resolve()


@pytest.mark.parametrize("primary", ["train", "evaluate"])
def test_every_primary_config_has_the_sweep_group(primary: str):
    """evaluate.yaml extends train.yaml, where Hydra would refuse a `hydra.searchpath`: both see sweep= anyway."""
    with initialize_config_dir(str(CONF), version_base="1.3"):
        cfg = compose(primary, overrides=["sweep=seeds"], return_hydra_config=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN and expand(cfg) == EXPECTED["seeds"]


@pytest.mark.parametrize("name", EXPECTED)
def test_sweep_composes_to_a_multirun_of_its_jobs(name: str):
    cfg = compose_sweep(f"sweep={name}")
    assert cfg.hydra.mode == RunMode.MULTIRUN, "no -m needed"
    assert cfg.hydra.sweeper._target_ == BASIC
    assert cfg.task_name == f"sweep_{name}", "outputs/sweep_<name>/multiruns/<time>/"
    assert expand(cfg) == EXPECTED[name]
    assert "WANDB_RUN_GROUP" not in cfg.hydra.job.env_set, "W&B group: from the sweep root, not the launch time"


def test_lora_rank_sweeps_lora_with_fixed_alpha_and_tags_the_rank():
    cfg = compose_sweep("sweep=lora_rank", "method.peft_config.r=4")
    assert cfg.method.name == "lora" and cfg.method.peft_config.lora_alpha == 16
    assert "rank4" in cfg.tags and "lora" in cfg.tags and "tiny_t5" in cfg.tags


def test_model_size_presets_merge_into_the_tiny_model():
    cfg = compose_sweep("sweep=model_size")
    jobs = expand(cfg)
    assert len(jobs) == 4
    small = compose_sweep("sweep=model_size", *jobs[0])
    assert small.model.config.d_model == 64 and small.model.config.num_layers == 1
    assert small.model.config.feed_forward_proj == "gated-gelu", "presets merge, they do not replace"
    assert "d64x1" in small.tags


def test_seeds_compose_with_another_sweep_as_a_product():
    cfg = compose_sweep("sweep=[seeds,lora_rank]")
    jobs = expand(cfg)
    assert len(jobs) == 21 and ["seed=3", "method.peft_config.r=64"] in jobs
    assert cfg.task_name == "sweep_lora_rank"


def test_lr_search_is_an_optuna_log_range_on_the_learning_rate():
    cfg = compose_sweep("sweep=lr_search", "hydra.sweep.dir=/x/search")
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.peftlab_optuna.sweeper.OptunaSweeper"
    assert cfg.hydra.sweeper.direction == "minimize" and cfg.optimized_metric == "val/loss", "selects on validation"
    assert cfg.hydra.sweeper.storage == "sqlite:////x/search/optuna.db", "stored in the sweep folder: resumable"
    (override,) = OverridesParser.create().parse_overrides([f"method.lr={cfg.hydra.sweeper.params['method.lr']}"])
    dist = distribution(override)
    assert isinstance(dist, FloatDistribution) and dist.log and (dist.low, dist.high) == (1e-5, 1e-1)


@pytest.mark.slow
def test_lr_search_selects_on_the_validation_loss_that_run_json_keeps(tmp_path: Path):
    """Two real Optuna trials: the best value it reports is the smaller val/loss of the two run.json files."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    args = ["sweep=lr_search", "hydra.sweeper.n_trials=2", *TINY, f"hydra.sweep.dir={tmp_path}"]
    proc = subprocess.run(
        [sys.executable, "-m", "research.train", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/run.json"))]
    assert len(records) == 2 and all({"val/loss", "test/loss"} <= set(r["metrics"]) for r in records)
    best = OmegaConf.load(tmp_path / "optimization_results.yaml")
    chosen = min(records, key=lambda r: r["metrics"]["val/loss"])
    assert best.best_value == pytest.approx(chosen["metrics"]["val/loss"])
    assert best.best_params["method.lr"] == pytest.approx(chosen["config"]["method"]["lr"])


SEARCH = ["sweep=lr_search", "hydra.sweeper.n_trials=2", *TINY]
POSTGRES = os.environ.get("PEFTLAB_TEST_POSTGRES")  # a database the test may write to: postgresql://user@host/db


def study_trials(storage: str, name: str = "sweep_lr_search_lora") -> list[FrozenTrial]:
    return optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)


def searched(folder: Path) -> dict[int, dict]:
    """The search's run records in a sweep folder, by job number (the number of the trial it ran)."""
    return {int(p.parent.name.split("_")[0]): json.loads(p.read_text()) for p in folder.glob("*/run.json")}


def assert_one_run_per_trial(trials: list[FrozenTrial], records: dict[int, dict]) -> None:
    """Each completed trial was run once, as its job: its learning rate, and the val/loss it was told."""
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    assert sorted(records) == [t.number for t in done]
    for trial in done:
        record = records[trial.number]
        assert record["status"] == "completed"
        assert record["config"]["method"]["lr"] == pytest.approx(trial.params["method.lr"])
        assert record["metrics"]["val/loss"] == pytest.approx(trial.value)


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None and time.monotonic() < deadline, f"not reached (exit code {proc.poll()})"
        time.sleep(0.5)


@pytest.mark.slow
def test_a_killed_search_resumes_with_the_trial_it_was_running(tmp_path: Path):
    folder = tmp_path / "search"
    storage = f"sqlite:///{folder / 'optuna.db'}"  # the default: in the sweep folder
    args = [*SEARCH, "trainer.max_epochs=4", f"hydra.sweep.dir={folder}"]  # long enough a trial to be caught running
    proc = start_cli(*args, cwd=tmp_path, log=tmp_path / "killed.log")
    running = [TrialState.COMPLETE, TrialState.RUNNING]
    wait_until(lambda: any(folder.glob("1_*/run.json")) and [t.state for t in study_trials(storage)] == running, proc)
    proc.kill()
    proc.wait()

    again = run_cli(*args, cwd=tmp_path)  # the same command
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-3000:]
    assert "trial 1 was left running by a killed launch: run again" in again.stdout + again.stderr
    trials = study_trials(storage)
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, "trial 0 kept, trial 1 run again, none added"
    assert_one_run_per_trial(trials, searched(folder))


@pytest.mark.slow
@pytest.mark.parametrize(
    "server",
    [
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(
                not POSTGRES, reason="no PostgreSQL server: set PEFTLAB_TEST_POSTGRES=postgresql://user@host:port/db"
            ),
        ),
    ],
)
def test_two_launches_on_one_storage_share_the_search(tmp_path: Path, server: str):
    storage = POSTGRES if server == "postgresql" else f"sqlite:///{tmp_path / 'search.db'}"
    name = f"shared_{uuid.uuid4().hex[:8]}"  # a study of its own: a server's database outlives the test
    args = [*SEARCH, f"hydra.sweeper.storage='{storage}'", f"hydra.sweeper.study_name={name}"]
    launches = {
        w: start_cli(*args, f"hydra.sweep.dir={tmp_path / w}", cwd=tmp_path, log=tmp_path / f"{w}.log") for w in "ab"
    }
    for w, proc in launches.items():
        assert proc.wait(timeout=900) == 0, (tmp_path / f"{w}.log").read_text()[-3000:]

    trials = study_trials(storage, name)
    a, b = searched(tmp_path / "a"), searched(tmp_path / "b")
    assert a and b, "each launch ran trials of the one search"
    assert not a.keys() & b.keys(), "no trial run by both"
    assert 2 <= len(trials) <= 3, "2 completed trials; the launch that saw 1 missing finished the one it started"
    assert_one_run_per_trial(trials, a | b)
    assert len({t.params["method.lr"] for t in trials}) == len(trials), "no learning rate drawn twice"
    optuna.delete_study(study_name=name, storage=storage)


def test_joblib_launcher_composes():
    cfg = compose_sweep("sweep=seeds", "hydra/launcher=parallel")
    assert cfg.hydra.launcher._target_.endswith("JoblibLauncher") and cfg.hydra.launcher.n_jobs == 2
    assert compose_sweep("sweep=seeds", "hydra/launcher=joblib").hydra.launcher.n_jobs == -1


def test_slurm_launcher_gives_each_ddp_job_one_task_per_device():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="pip install -e '.[slurm]'")
    cfg = compose_sweep("sweep=methods", "hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.tasks_per_node, launcher.gpus_per_node, launcher.nodes) == (4, 4, 1)
    assert launcher.timeout_min == 240 and launcher.submitit_folder.endswith("/.submitit/%j")
    assert compose_sweep("sweep=seeds", "hydra/launcher=slurm").hydra.launcher.tasks_per_node == 1
    local = compose_sweep("sweep=seeds", "hydra/launcher=slurm", "local=example").hydra.launcher  # conf/local/
    assert (local.partition, local.account) == ("gpu", "my-account") and launcher.partition is None


def _launch(cwd: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """sweep=methods cut to three jobs, bitfit failing (the tiny T5 has no biases), from outside the repo,
    into its default folder outputs/sweep_methods/multiruns/<time> (returned with the process)."""
    args = ["sweep=methods", "hydra.sweeper.params.method='lora,bitfit,prompt_tuning'", *TINY]
    multiruns = cwd / "outputs" / "sweep_methods" / "multiruns"
    before = set(multiruns.glob("*"))
    proc = run_cli(*args, cwd=cwd, timeout=300)
    (sweep_dir,) = set(multiruns.glob("*")) - before
    return proc, sweep_dir


def _status(job_dir: Path) -> str | None:
    path = job_dir / "run.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


@pytest.mark.slow
def test_sweep_survives_a_failure_compares_and_relaunches(tmp_path: Path):
    proc, first = _launch(cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert "1 of 3 jobs did not complete: 1 failed" in proc.stdout
    jobs = {p.name: _status(p) for p in first.iterdir() if p.is_dir()}
    assert jobs == {"0_lora": "completed", "1_bitfit": "failed", "2_prompt_tuning": "completed"}

    report = compare.compare([first])
    assert [r["method"] for r in report.runs] == ["lora", "prompt_tuning"]
    assert [(r["method"], r["status"]) for r in report.failed] == [("bitfit", "failed")]
    assert "no biases" in report.failed[0]["error"]
    assert all((first / f"comparison.{ext}").stat().st_size > 0 for ext in ("md", "csv", "html"))

    proc, second = _launch(cwd=tmp_path)  # the same command again: the same sweep, a new folder
    assert proc.returncode == 1, "bitfit still fails, and says so"
    assert "2 jobs skipped" in proc.stdout
    assert (second / "0_lora" / "skipped.json").exists() and _status(second / "0_lora") is None
    assert _status(second / "1_bitfit") == "failed", "a failed job is run again"
