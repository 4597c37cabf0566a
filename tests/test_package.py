"""The wheel is what users install: built from this repository, installed into a fresh environment, its
`peftlab` script runs from any folder on the configs the wheel carries. Plus the CLI's own dispatch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from research import cli
from tests.helpers import ROOT

FRAMEWORK = ("torch", "transformers", "peft", "pytorch_lightning")
TINY = [
    "trainer.max_epochs=1",
    "data.num_examples=40",
    "data.eval_limit=4",
    "data.test_limit=4",
    "generation.max_new_tokens=8",
    "logger=csv",
]
# Outside the repository: no PYTHONPATH, so `research` can only come from the installed wheel.
ENV = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}


def test_importing_the_cli_loads_no_framework():
    """`peftlab --help` must answer at once: the CLI imports a command's module only to run it."""
    code = f"import sys, research.cli; print([m for m in {FRAMEWORK} if m in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(f"    {name}  " in out for name in cli.COMMANDS), out


def test_a_command_gets_its_arguments_and_argv_is_restored(capsys: pytest.CaptureFixture[str]):
    before = list(sys.argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["compare", "--help"])
    assert exit_.value.code == 0
    assert "--metric" in capsys.readouterr().out, "research.compare's own parser answered"
    assert sys.argv == before


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit"])
    assert exit_.value.code == 2 and "invalid choice: 'fit'" in capsys.readouterr().err


def test_a_missing_module_fails_its_own_command_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("research.ghost", "a command of a later version"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ghost", "x=1"])
    assert exit_.value.code == "peftlab ghost: this version of peftlab has no research.ghost module"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the sources (an in-place build would leave build/ in the checkout)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("research", "hydra_plugins", "conf", "sweeps"):  # conf/sweep stays a link to ../sweeps/sweep
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q"]
    subprocess.run([*pip, "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("peftlab-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment holding the wheel; its dependencies are this environment's, through a
    .pth path line (which, unlike a site folder, runs no .pth of its own: no editable `research` finder)."""
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = dict.fromkeys(sysconfig.get_paths()[k] for k in ("purelib", "platlib"))
    (Path(site) / "deps.pth").write_text("".join(f"{path}\n" for path in deps))
    install = [python, "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=ENV, timeout=300)
    return env_dir


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_the_wheel_carries_every_module_and_every_config(wheel: Path):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {
        p.relative_to(ROOT).as_posix()
        for package in ("research", "hydra_plugins")
        for p in (ROOT / package).rglob("*.py")
        if "__pycache__" not in p.parts
    }
    assert modules <= names, f"missing from pyproject's packages: {sorted(modules - names)}"
    configs = {f"research/{p.relative_to(ROOT).as_posix()}" for p in (ROOT / "conf").rglob("*.yaml")}
    sweeps = {f"research/conf/sweep/{p.name}" for p in (ROOT / "sweeps" / "sweep").glob("*.yaml")}
    assert {"research/conf/train.yaml", "research/conf/evaluate.yaml", "research/conf/sweep/seeds.yaml"} <= names
    assert configs | sweeps <= names, sorted((configs | sweeps) - names)
    (metadata,) = (zipfile.Path(wheel, n).read_text() for n in names if n.endswith(".dist-info/METADATA"))
    assert "\nName: peftlab\n" in metadata and "\nRequires-Dist: torch==2.13.0\n" in metadata
    (scripts,) = (zipfile.Path(wheel, n).read_text() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "peftlab = research.cli:main" in scripts


@pytest.mark.slow
def test_installed_cli_answers_help_without_the_framework(venv: Path, tmp_path: Path):
    out = _run(venv, "peftlab", "--help", cwd=tmp_path).stdout
    assert all(f"    {name}  " in out for name in cli.COMMANDS), out
    code = f"import sys, research, research.cli; print(research.__file__, [m for m in {FRAMEWORK} if m in sys.modules])"
    where, loaded = _run(venv, "python", "-c", code, cwd=tmp_path).stdout.split(" ", 1)
    assert Path(where).is_relative_to(venv), "research comes from the wheel"
    assert loaded.strip() == "[]"


@pytest.mark.slow
def test_installed_peftlab_trains_from_any_folder(venv: Path, tmp_path: Path):
    proc = _run(venv, "peftlab", "train", *TINY, cwd=tmp_path)
    (record,) = tmp_path.glob("outputs/train/runs/*/run.json")  # Hydra's run dir is relative to the folder
    assert json.loads(record.read_text())["status"] == "completed", proc.stdout[-2000:]


@pytest.mark.slow
def test_installed_sweep_group_composes_for_train_and_evaluate(venv: Path, tmp_path: Path):
    """From outside the repository: peftlab train, and `python -m research.evaluate` (evaluate.yaml)."""
    job = OmegaConf.create(_run(venv, "peftlab", "train", "sweep=seeds", *TINY, "--cfg", "job", cwd=tmp_path).stdout)
    assert job.task_name == "sweep_seeds" and job.trainer.max_epochs == 1
    sweeper = ["--cfg", "hydra", "--package", "hydra.sweeper"]
    cfg = OmegaConf.create(
        _run(venv, "python", "-m", "research.evaluate", "sweep=seeds", *sweeper, cwd=tmp_path).stdout
    )
    assert cfg.params.seed == "1,2,3"
    search = OmegaConf.create(_run(venv, "peftlab", "train", "sweep=lr_search", *sweeper, cwd=tmp_path).stdout)
    assert search._target_ == "hydra_plugins.peftlab_optuna.sweeper.OptunaSweeper", "the wheel's own sweeper"
    assert not (tmp_path / "outputs").exists(), "--cfg composes only"
