"""`peftlab study`: a study file is refused whole before anything runs, naming the field; the rate is chosen on
validation with the edge rule; the smoke study runs end to end, resumes, grows, keeps its records with no
machine path, and `peftlab compare` on the kept records writes its tables again exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from research.study.__main__ import check_runs
from research.study.choice import beyond, chosen_rate
from research.study.spec import Study, StudyError, load
from tests.helpers import ASSETS, ROOT, cli_env, needs_assets, run_cli, write_run

SMOKE = """
runs: [logger=none]
select: {metric: val/loss, direction: minimize}
report: {metric: test/loss}
seeds: [1, 2]
arms:
  lora: {overrides: [method=lora], lr: [1.0e-3, 3.0e-3]}
"""


def study_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("replace", "by", "field"),
    [
        ("select: {metric: val/loss", "select: {metric: test/loss", "select.metric"),
        ("direction: minimize", "direction: lowest", "select.direction"),
        ("seeds: [1, 2]", "seeds: [1, 1]", "seeds"),
        ("seeds: [1, 2]", "seeds: []", "seeds"),
        ("lr: [1.0e-3, 3.0e-3]", "lr: [1.0e-3, -3.0e-3]", "arms.lora.lr.1"),
        ("lr: [1.0e-3, 3.0e-3]", "lr: []", "arms.lora.lr"),
        ("lora: {", "lo/ra: {", "arms.lo/ra"),
        ("seeds: [1, 2]", "seed: [1, 2]", "seed: no such field"),
        ("overrides: [method=lora], ", "overrides: [method=lora], rank: 4, ", "arms.lora.rank"),
        ("lora: {overrides: [method=lora], lr: [1.0e-3, 3.0e-3]}", "lora: {command: [python, x.py]}", "{out}"),
    ],
)
def test_a_wrong_field_is_refused_naming_the_file_and_the_field(tmp_path: Path, replace: str, by: str, field: str):
    assert replace in SMOKE
    path = study_file(tmp_path, SMOKE.replace(replace, by))
    with pytest.raises(StudyError) as err:
        load(str(path))
    assert str(path) in str(err.value) and field in str(err.value)


def test_a_command_arm_takes_its_rate_from_an_arm_that_trains(tmp_path: Path):
    control = "\n  control: {command: [python, c.py, --out, '{out}', --lr, '{lr}'], lr_from: nosuch}\n"
    with pytest.raises(StudyError, match="arms.control.lr_from='nosuch'"):
        load(str(study_file(tmp_path, SMOKE + control)))
    study = load(str(study_file(tmp_path, SMOKE + control.replace("nosuch", "lora"))))
    assert study.arm("control").lr_from == "lora"


def test_study_overrides_edit_the_study_and_every_shipped_study_loads(tmp_path: Path):
    study = load(str(study_file(tmp_path, SMOKE)), ["study.seeds=[1,2,3]", "study.arms.lora.lr=[0.01]"])
    assert study.seeds == (1, 2, 3) and study.arm("lora").lr == (0.01,) and not study.arm("lora").searches
    with pytest.raises(StudyError, match="no study named 'nosuch'; shipped: .*smoke"):
        load("nosuch")
    for path in sorted((ROOT / "conf" / "study").glob("*.yaml")):
        assert isinstance(load(str(path)), Study), path


@pytest.mark.parametrize(
    ("grid", "best", "expected"),
    [
        ((1e-4, 3e-4, 1e-3), 1e-3, 3e-3),  # the high edge won: one half-decade above
        ((1e-4, 3e-4, 1e-3), 1e-4, 3e-5),  # the low edge won: one below
        ((1e-4, 3e-4, 1e-3), 3e-4, None),  # inside: the optimum is bracketed
        ((2e-5, 5e-5, 1e-4), 1e-4, 3e-4),  # off the ladder: the next ladder rate past 1.5x
        ((2e-5, 5e-5, 1e-4), 2e-5, 1e-5),
        ((1e-3, 3e-4, 3e-3), 3e-3, 1e-2),  # the usual rate first: the edge is by value, not position
        ((1e-3,), 1e-3, None),  # no search, no edge
        ((1e-4, 1e-3), 3e-3, None),  # a rate beyond the grid is never extended again
    ],
)
def test_the_edge_rule(grid: tuple, best: float, expected: float | None):
    assert beyond(grid, best) == pytest.approx(expected) if expected else beyond(grid, best) is None


def test_the_rate_is_chosen_on_validation_and_a_winning_edge_is_beaten_only_by_the_rate_beyond(tmp_path: Path):
    study = load(str(study_file(tmp_path, SMOKE)))
    lora = study.arm("lora")

    def run(lr: float, val: float, seed: int = 1) -> dict:
        folder = write_run(tmp_path, f"lr{lr}_s{seed}", "method=lora", f"method.lr={lr}", f"seed={seed}")
        return json.loads((folder / "run.json").read_text()) | {"metrics": {"val/loss": val, "test/loss": 0.0}}

    grid = [run(1e-3, 2.0), run(3e-3, 1.5), run(1e-3, 0.1, seed=2)]  # seed 2 never takes part in the choice
    assert chosen_rate(study, lora, grid) == 3e-3
    assert chosen_rate(study, lora, [*grid, run(1e-2, 1.7)]) == 3e-3  # the rate beyond lost
    assert chosen_rate(study, lora, [*grid, run(1e-2, 1.2)]) == 1e-2
    assert chosen_rate(study, lora, []) is None


SHIPPED = sorted((ROOT / "conf" / "study").glob("*.yaml"))


@needs_assets(ASSETS)
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_every_arm_of_every_shipped_study_composes_and_passes_the_config_checks(path: Path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the studies name the offline assets as ../shared/assets, from the repository root
    study = load(str(path))
    check_runs(study, list(study.runs))


def study_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(*args, cwd=cwd, timeout=900, module="research.study")


def test_a_wrong_run_override_stops_the_study_before_anything_runs(tmp_path: Path):
    for wrong, said in [("data.batch_size=0", "arm full: data.batch_size=0"), ("seed=3", "study.seeds=[...]")]:
        done = study_cli("smoke", wrong, "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
        assert done.returncode == 1 and said in done.stderr, done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped smoke study, run once from a fresh folder: runs in outputs/studies/smoke, tables in results/smoke."""
    cwd = tmp_path_factory.mktemp("smoke")
    done = study_cli("smoke", cwd=cwd)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return cwd


def records(root: Path) -> dict[Path, dict]:
    return {p.parent.relative_to(root): json.loads(p.read_text()) for p in root.rglob("run.json")}


@pytest.mark.slow
def test_the_smoke_study_runs_the_protocol_and_keeps_every_record(smoke: Path):
    runs, results = records(smoke / "outputs/studies/smoke"), smoke / "results/smoke"
    kept = records(results / "runs")
    assert set(kept) == set(runs) and all(r["status"] == "completed" for r in runs.values())
    for arm in ("full", "lora"):  # a grid of 2 at seed 1 (+ the rate beyond when an edge won), seed 2 at the choice
        search = [r for p, r in runs.items() if p.parts[:2] == (arm, "lr_search")]
        seeds = [r for p, r in runs.items() if p.parts[:2] == (arm, "seeds")]
        assert {r["seed"] for r in search} == {1} and len(search) in (2, 3)
        assert [r["seed"] for r in seeds] == [2]
        best = min(search, key=lambda r: r["metrics"]["val/loss"])
        assert seeds[0]["config"]["method"]["lr"] == best["config"]["method"]["lr"]
    assert [r["method"] for p, r in runs.items() if p.parts[0] == "zero_shot"] == ["zero_shot"]
    for path in (results / "runs").rglob("*"):
        assert path.name in ("run.json", "predictions.jsonl", "study.yaml") or path.is_dir(), path
        assert path.is_dir() or str(smoke) not in path.read_text(), f"{path} names this machine's folder"
    table = (results / "comparison.md").read_text()
    assert "## Arms at their chosen rates" in table and "full (lr " in table and "lora (lr " in table
    assert "zero_shot" in table and "decided" in table


def regenerated(results: Path, tmp_path: Path) -> Path:
    """`peftlab compare results/<study>/runs --out results/<study>`, as the study ran it, on a copy of the kept
    records in `tmp_path`: the tables it writes there."""
    copy = tmp_path / "results" / results.name
    shutil.copytree(results / "runs", copy / "runs")
    command = ["-m", "research.compare", f"results/{results.name}/runs", "--out", f"results/{results.name}"]
    subprocess.run([sys.executable, *command], cwd=tmp_path, env=cli_env(), capture_output=True, check=True)
    return copy


@pytest.mark.slow
def test_compare_on_the_kept_records_writes_the_tables_again_exactly(smoke: Path, tmp_path: Path):
    results = smoke / "results/smoke"
    again = regenerated(results, tmp_path)
    for name in ("comparison.md", "comparison.csv"):
        assert (again / name).read_text() == (results / name).read_text(), name


@pytest.mark.slow
def test_the_study_resumes_and_grows_running_only_what_is_missing(smoke: Path):
    before = {p: r["started_at"] for p, r in records(smoke / "outputs/studies/smoke").items()}
    done = study_cli("smoke", "study.seeds=[1,2,3]", "--arms", "lora", cwd=smoke)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    after = records(smoke / "outputs/studies/smoke")
    new = [p for p in after if p not in before]
    assert [after[p]["seed"] for p in new] == [3] and new[0].parts[:2] == ("lora", "seeds")
    assert all(after[p]["started_at"] == t for p, t in before.items())  # nothing ran again
    lines = (smoke / "results/smoke/invocations.md").read_text().splitlines()
    assert len(lines) == 2 and "--arms lora" in lines[1]


@pytest.mark.slow
def test_an_arm_folder_of_other_overrides_is_refused_not_mixed(smoke: Path):
    done = study_cli("smoke", "data.eval_limit=6", "--arms", "lora", cwd=smoke)
    assert done.returncode == 1 and "holds arm lora's runs made with other overrides" in done.stderr, done.stderr


COMMITTED = sorted(p.parent.parent for p in (ROOT / "results").glob("*/runs/study.yaml"))


@pytest.mark.parametrize("results", COMMITTED, ids=[p.name for p in COMMITTED])
def test_every_committed_study_is_regenerated_exactly_from_its_kept_records(results: Path, tmp_path: Path):
    again = regenerated(results, tmp_path)
    for name in ("comparison.md", "comparison.csv"):
        assert (again / name).read_text() == (results / name).read_text(), f"{results.name}/{name}"
