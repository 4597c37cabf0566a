"""The wheel is what users install: built from this repository, installed into a fresh environment, its
`peftlab` script runs from any folder on the configs the wheel carries. Plus the CLI's own dispatch."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from research import cli
from tests.helpers import ROOT, cli_env

FRAMEWORK = ("torch", "transformers", "peft", "pytorch_lightning")
TINY = [
    "trainer.max_epochs=1",
    "data.num_examples=40",
    "data.eval_limit=4",
    "data.test_limit=4",
    "generation.max_new_tokens=8",
    "logger=csv",
]
HELP_SECONDS = 5.0
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


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_commands_help_answers_in_seconds(command: str):
    """Under 2 s on 2 idle cores; the bound leaves room for a busy machine (bench's took 15 s when its report
    module imported Lightning, train's 3 s when Hydra copied its ConfigStore for each group it listed)."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "research.cli", command, "--help"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 0 and command in proc.stdout, proc.stderr[-2000:]
    assert seconds < HELP_SECONDS, f"peftlab {command} --help took {seconds:.1f} s"


@pytest.mark.parametrize(
    "command", [["-m", "research.cli", "train", "--help"], ["-c", "import research.config"]], ids=["cli", "import"]
)
def test_another_projects_research_init_is_named_with_the_repair(tmp_path: Path, command: list[str]):
    """PyPI's `research` installed beside peftlab replaced research/__init__.py: here, a copy of the package with
    another __init__.py, first on sys.path."""
    shutil.copytree(ROOT / "research", tmp_path / "research", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "research" / "__init__.py").write_text('__version__ = "0.2.0"\n')
    env = {**cli_env(), "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, *command], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert f"{tmp_path / 'research' / '__init__.py'} is not peftlab's" in proc.stderr, proc.stderr[-2000:]
    assert "pip uninstall research && pip install --force-reinstall peftlab" in proc.stderr


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["fit"])
    assert exit_.value.code == 2 and "invalid choice: 'fit'" in capsys.readouterr().err


def test_a_missing_module_fails_its_own_command_only(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("research.ghost", "a command of a later version"))
    with pytest.raises(SystemExit) as exit_:
        cli.main(["ghost", "x=1"])
    assert exit_.value.code == "peftlab ghost: this version of peftlab has no research.ghost module"


def test_every_imported_package_is_a_declared_dependency():
    """Imported by research/ means needed by every install: a dependency's own dependency (numpy through
    transformers) may be dropped by its next release."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {canonicalize_name(Requirement(r).name) for r in project["dependencies"]}
    distributions = importlib.metadata.packages_distributions()
    undeclared = {}
    for path in (ROOT / "research").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for top in {m.split(".")[0] for m in modules} - set(sys.stdlib_module_names) - {"research"}:
                for dist in distributions.get(top, [top]):
                    if canonicalize_name(dist) not in declared:
                        undeclared.setdefault(dist, set()).add(path.relative_to(ROOT).as_posix())
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"


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
    """A fresh virtual environment holding the wheel and, of this environment's packages, only those its declared
    dependencies need (links to their files, through a .pth path line, which runs no .pth of its own: no
    editable `research` finder): an import of an undeclared package fails here as after `pip install peftlab`,
    without downloading several GB."""
    env_dir = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    deps = tmp_path_factory.mktemp("declared") / "site-packages"  # dill (datasets' hashing) pickles a module by
    # reference only from a folder of that name or under sys.prefix
    for dist in needed(wheel_requirements(wheel)):
        for file in dist.files or ():
            target = deps / file
            if ".." not in file.parts and not target.exists():  # scripts (../../bin) are left out
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(dist.locate_file(file))
    (Path(site) / "deps.pth").write_text(f"{deps}\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q"]
    subprocess.run([*install, str(wheel)], check=True, capture_output=True, env=ENV, timeout=300)
    return env_dir


def wheel_requirements(wheel: Path) -> list[Requirement]:
    """The wheel's Requires-Dist lines: what `pip install peftlab` installs (extras' lines included, marked)."""
    with zipfile.ZipFile(wheel) as whl:
        (metadata,) = (whl.read(n).decode() for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    return [Requirement(line.split(":", 1)[1]) for line in metadata.splitlines() if line.startswith("Requires-Dist:")]


def needed(requirements: list[Requirement]) -> list[importlib.metadata.Distribution]:
    """This environment's distributions that `requirements` (no extra chosen) pull in, transitively."""
    found: dict[str, importlib.metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        name, extras = canonicalize_name(req.name), frozenset(req.extras)
        if (req.marker and not req.marker.evaluate({"extra": extra})) or (name, extras) in seen:
            continue
        seen.add((name, extras))
        dist = found.setdefault(name, importlib.metadata.distribution(name))
        for line in dist.requires or ():
            sub = Requirement(line)
            todo += [(sub, e) for e in ("", *extras) if not sub.marker or sub.marker.evaluate({"extra": e})][:1]
    return list(found.values())


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
    assert "\nName: peftlab\n" in metadata
    (torch,) = (r for r in wheel_requirements(wheel) if r.name == "torch")
    assert {s.operator for s in torch.specifier} == {">=", "<"}, "a range: pip keeps an installed torch that fits"
    markers = {str(r.marker) for r in wheel_requirements(wheel) if r.marker}
    assert {'extra == "qlora"', 'extra == "tensorboard"', 'extra == "search"', 'extra == "slurm"'} <= markers
    (scripts,) = (zipfile.Path(wheel, n).read_text() for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "peftlab = research.cli:main" in scripts


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("PEFTLAB_RESOLVE") != "1",
    reason="PEFTLAB_RESOLVE=1 asks the package index (about 2 minutes on 2 cores); the venv fixture checks the "
    "declared dependencies against this environment's",
)
def test_pip_resolves_the_declared_dependencies_without_the_extras(wheel: Path, tmp_path: Path):
    """What `pip install peftlab` would install into an empty environment, asked of the index (no download)."""
    report = tmp_path / "report.json"
    pip = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q", "--report", str(report)]
    proc = subprocess.run([*pip, str(wheel)], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0 and any(s in proc.stderr for s in ("NewConnectionError", "Network is unreachable")):
        pytest.skip(f"no package index reachable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {canonicalize_name(i["metadata"]["name"]) for i in json.loads(report.read_text())["install"]}
    assert {"torch", "transformers", "peft", "rich", "numpy"} <= names
    assert not names & {"bitsandbytes", "tensorboard", "optuna", "hydra-submitit-launcher", "evaluate"}


@pytest.mark.slow
def test_installed_cli_answers_help_without_the_framework(venv: Path, tmp_path: Path):
    out = _run(venv, "peftlab", "--help", cwd=tmp_path).stdout
    assert all(f"    {name}  " in out for name in cli.COMMANDS), out
    code = f"import sys, research, research.cli; print(research.__file__, [m for m in {FRAMEWORK} if m in sys.modules])"
    where, loaded = _run(venv, "python", "-c", code, cwd=tmp_path).stdout.split(" ", 1)
    assert Path(where).is_relative_to(venv), "research comes from the wheel"
    assert loaded.strip() == "[]"
    extras = "import importlib.util as u; print([m for m in ('bitsandbytes', 'optuna', 'pytest') if u.find_spec(m)])"
    assert _run(venv, "python", "-c", extras, cwd=tmp_path).stdout.strip() == "[]", "only the declared dependencies"


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
    command = [str(venv / "bin" / "peftlab"), "train", "sweep=lr_search", *sweeper]  # optuna is the search extra
    search = subprocess.run(command, cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert (
        search.returncode == 1
        and 'needs optuna, which is not installed: pip install "peftlab[search]"' in search.stderr
    )
    assert not (tmp_path / "outputs").exists(), "--cfg composes only"
