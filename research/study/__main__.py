"""peftlab study <name | path.yaml> [--out DIR] [--runs-dir DIR] [--arms A,B] [--table-only] [overrides ...]

`study.<field>=<value>` edits the study (`study.seeds=[1,2,3,4]`, `study.arms.lora.lr=[1e-3]`); any other
override goes to every run (`data.train_limit=500`, `hydra/launcher=joblib`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from research.study.spec import STUDY_PREFIX, Study, StudyError, load

RESULTS, RUNS = Path("results"), Path("outputs/studies")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="peftlab study", description=__doc__.splitlines()[0].split(": ", 1)[-1])
    parser.add_argument("study", help="a study shipped in conf/study/ (e.g. smoke) or a path to a .yaml file")
    parser.add_argument("overrides", nargs="*", help="study.<field>=... for the study, anything else for every run")
    parser.add_argument("--out", type=Path, help="tables and kept records (default: results/<name>)")
    parser.add_argument(
        "--runs-dir", type=Path, help="the run folders, weights included (default: outputs/studies/<name>)"
    )
    parser.add_argument("--arms", default="", help="only these arms, comma-separated (zero-shot runs without --arms)")
    parser.add_argument("--table-only", action="store_true", help="run nothing: keep the records and write the tables")
    return parser.parse_intermixed_args(argv)


STUDY_OWNED = {"method.lr": "each arm's lr (study.arms.<arm>.lr=[...])", "seed": "study.seeds=[...]"}


def check_runs(study: Study, run_overrides: list[str]) -> None:
    """Every trained arm's config composed and checked, before anything runs: a mistyped key or a value not
    allowed stops the study in seconds, not after the arms before it have trained."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from research.command import started
    from research.config import config_dir
    from research.config.schema import check_config
    from research.study.launch import QUIET
    from research.study.protocol import launcher_only

    for override in run_overrides:
        if (key := override.lstrip("+~").split("=", 1)[0]) in STUDY_OWNED:
            raise StudyError(f"{override}: the study sets {key} itself; to change it, edit {STUDY_OWNED[key]}")
    started()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for arm in study.arms:
            if arm.command:
                continue
            words = [*QUIET, *run_overrides, *arm.overrides, f"method.lr={arm.lr[0]}", f"seed={study.seeds_of(arm)[0]}"]
            try:
                check_config(compose("train", overrides=[w for w in words if not launcher_only(w)]))
            except (HydraException, OmegaConfBaseException, ValueError) as err:
                raise StudyError(f"arm {arm.name}: {err}") from None


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    study_edits = [o for o in args.overrides if o.startswith(STUDY_PREFIX)]
    run_overrides = [o for o in args.overrides if not o.startswith(STUDY_PREFIX)]
    try:
        study = load(args.study, study_edits)
        if unknown := sorted(set(filter(None, args.arms.split(","))) - {a.name for a in study.arms}):
            raise StudyError(
                f"--arms: no arm {unknown[0]!r}; the study's arms: {', '.join(a.name for a in study.arms)}"
            )
        check_runs(study, [*study.runs, *run_overrides])
    except StudyError as err:
        sys.exit(f"peftlab study: {err}")
    out, runs_root = args.out or RESULTS / study.name, args.runs_dir or RUNS / study.name
    started_at = time.time()
    from research.study.launch import Launcher
    from research.study.protocol import ArmFolderError, Protocol

    launcher = Launcher(study.name, [*study.runs, *run_overrides])
    if not args.table_only:
        try:
            Protocol(study, runs_root, launcher, tuple(filter(None, args.arms.split(",")))).run()
        except ArmFolderError as err:
            sys.exit(f"peftlab study: {err}")
    status = write_tables(study, runs_root, out)
    invocation(out, argv, started_at, launcher.failed)
    if launcher.failed:
        print("study: steps that did not complete:\n  " + "\n  ".join(launcher.failed))
    sys.exit(1 if launcher.failed or status else 0)


def write_tables(study: Study, runs_root: Path, out: Path) -> int:
    """Keep the records, then `peftlab compare` on the kept ones (what anyone can run again), and log the
    headline to W&B where the runs logged there."""
    from research.compare import compare
    from research.study.kept import keep

    if not runs_root.is_dir():
        print(f"study: no runs yet in {runs_root}: no tables")
        return 1
    count = keep(runs_root, out / "runs", study)
    kept = os.path.relpath(out / "runs")
    command = f"peftlab compare {shlex.quote(kept)} --out {shlex.quote(os.path.relpath(out))}"
    report = compare([out / "runs"], out, command=command)
    print(f"study {study.name}: {count} runs kept in {kept}; tables in {os.path.relpath(out)}/comparison.md")
    from research.compare.records import load_records
    from research.views.wandb_study import log_study

    if (run_id := log_study(study.name, report, load_records([out / "runs"]), runs_root)) is not None:
        print(f"study {study.name}: its tables are W&B run {run_id} (job type study, group {study.name})")
    return 0


def invocation(out: Path, argv: list[str] | None, started_at: float, failed: list[str]) -> None:
    """One line per invocation in <out>/invocations.md: when, the command, how it ended, the machine, the time."""
    words = sys.argv[1:] if argv is None else argv
    children = os.times()
    line = (
        f"- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(started_at))}: `peftlab study {shlex.join(words)}`, "
        f"{'steps failed: ' + '; '.join(failed) if failed else 'all steps completed'}, on {os.uname().machine} "
        f"with {os.cpu_count()} cores: {time.time() - started_at:.0f} s wall, "
        f"{children.children_user + children.children_system:.0f} s CPU of its runs\n"
    )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "invocations.md").open("a") as fh:
        fh.write(line)


if __name__ == "__main__":
    main()
