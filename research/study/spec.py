"""A study file (conf/study/<name>.yaml), read and checked whole before anything runs: every refusal names the
file and the field, and what is allowed. Torch-free, so a mistyped study fails in about a second."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from research.config import config_dir
from research.config.fields import positive, require

DIRECTIONS = ("maximize", "minimize")
EDGES = ("extend_once", "none")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # a folder name on every filesystem
PLACEHOLDERS = ("{python}", "{out}", "{seed}", "{lr}")  # what a command arm's words may hold
STUDY_PREFIX = "study."  # `study.seeds=[1]` on the command line edits the study; anything else is a run override


class StudyError(ValueError):
    """A study file or a study override that cannot run; the message names the file and the field."""


@dataclass(frozen=True)
class Arm:
    """One method (or recipe) of the study: its overrides, its learning-rate grid (one rate: no search) and its
    seeds. A command arm runs a program of its own (a plain-loop control) at the rate another arm chose."""

    name: str
    overrides: tuple[str, ...] = ()
    lr: tuple[float, ...] = ()
    seeds: tuple[int, ...] = ()
    command: tuple[str, ...] = ()
    lr_from: str | None = None

    @property
    def searches(self) -> bool:
        return len(self.lr) > 1


@dataclass(frozen=True)
class Study:
    name: str
    source: Path
    question: str
    runs: tuple[str, ...]
    select_metric: str
    direction: str
    report_metric: str
    also: tuple[str, ...]
    seeds: tuple[int, ...]
    edge: str
    zero_shot: bool
    arms: tuple[Arm, ...]

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def seeds_of(self, arm: Arm) -> tuple[int, ...]:
        return arm.seeds or self.seeds

    def as_dict(self) -> dict[str, Any]:
        """The study as it ran (overrides applied), written beside its tables."""
        arms = {}
        for arm in self.arms:
            fields = {"overrides": list(arm.overrides), "lr": list(arm.lr), "seeds": list(arm.seeds)}
            fields |= {"command": list(arm.command), "lr_from": arm.lr_from}
            arms[arm.name] = {k: v for k, v in fields.items() if v}
        return {
            "name": self.name,
            "question": self.question,
            "runs": list(self.runs),
            "select": {"metric": self.select_metric, "direction": self.direction},
            "report": {"metric": self.report_metric, "also": list(self.also)},
            "seeds": list(self.seeds),
            "edge": self.edge,
            "zero_shot": self.zero_shot,
            "arms": arms,
        }


def study_file(name_or_path: str) -> Path:
    """A path to a YAML file, or the name of a study shipped in conf/study/."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise StudyError(f"{name_or_path}: no such study file")
        return path
    shipped = config_dir() / "study" / f"{name_or_path}.yaml"
    if not shipped.is_file():
        names = ", ".join(sorted(p.stem for p in shipped.parent.glob("*.yaml")))
        raise StudyError(f"no study named {name_or_path!r}; shipped: {names} (or give a path to a .yaml file)")
    return shipped


def load(name_or_path: str, overrides: list[str] = ()) -> Study:
    """Read a study and apply `study.<field>=<value>` overrides (OmegaConf dotlist syntax)."""
    path = study_file(name_or_path)
    try:
        node = OmegaConf.load(path)
        edits = [o.removeprefix(STUDY_PREFIX) for o in overrides]
        node = OmegaConf.merge(node, OmegaConf.from_dotlist(edits)) if edits else node
        raw = OmegaConf.to_container(node, resolve=True)
    except (OmegaConfBaseException, OSError, ValueError) as err:
        raise StudyError(f"{path}: {err}") from None
    if not isinstance(raw, dict):
        raise StudyError(f"{path}: a study is a mapping of fields (runs, select, report, seeds, arms, ...)")
    try:
        return parse(raw, path)
    except (ValueError, TypeError) as err:
        raise StudyError(f"{path}: {err}") from None


KNOWN = {"name", "question", "runs", "select", "report", "seeds", "edge", "zero_shot", "arms"}
ARM_KNOWN = {"overrides", "lr", "seeds", "command", "lr_from"}


def parse(raw: dict[str, Any], path: Path) -> Study:
    unknown(raw, KNOWN, "")
    name = raw.get("name") or path.stem
    if not NAME.match(str(name)):
        raise ValueError(f"name={name!r}: a folder name (letters, digits, _ . -)")
    select, report = mapping(raw, "select"), mapping(raw, "report")
    unknown(select, {"metric", "direction"}, "select.")
    unknown(report, {"metric", "also"}, "report.")
    select_metric = text(select.get("metric"), "select.metric")
    if select_metric.startswith("test/"):
        raise ValueError(f"select.metric={select_metric!r}: the rate is chosen on validation (val/...), never test")
    direction = select.get("direction", "maximize")
    if direction not in DIRECTIONS:
        raise ValueError(f"select.direction={direction!r}; allowed: {', '.join(DIRECTIONS)}")
    edge = raw.get("edge", "extend_once")
    if edge not in EDGES:
        raise ValueError(f"edge={edge!r}; allowed: {', '.join(EDGES)}")
    if not isinstance(raw.get("zero_shot", True), bool):
        raise ValueError(f"zero_shot={raw['zero_shot']!r}; allowed: true, false")
    arms_raw = mapping(raw, "arms")
    if not arms_raw:
        raise ValueError("arms: a study needs at least one arm")
    arms = tuple(parse_arm(str(n), a) for n, a in arms_raw.items())
    study = Study(
        name=str(name),
        source=path,
        question=str(raw.get("question") or ""),
        runs=words(raw.get("runs", []), "runs"),
        select_metric=select_metric,
        direction=direction,
        report_metric=text(report.get("metric"), "report.metric"),
        also=words(report.get("also", []), "report.also"),
        seeds=seed_list(raw.get("seeds"), "seeds"),
        edge=edge,
        zero_shot=raw.get("zero_shot", True),
        arms=arms,
    )
    for arm in arms:
        if arm.lr_from is not None and (arm.lr_from not in arms_raw or study.arm(arm.lr_from).command):
            raise ValueError(f"arms.{arm.name}.lr_from={arm.lr_from!r}: the name of another arm that trains")
    return study


def parse_arm(name: str, raw: Any) -> Arm:
    where = f"arms.{name}"
    if not NAME.match(name):
        raise ValueError(f"{where}: an arm's name is a folder name (letters, digits, _ . -)")
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a mapping with overrides and lr (or command and lr_from)")
    unknown(raw, ARM_KNOWN, f"{where}.")
    seeds = seed_list(raw["seeds"], f"{where}.seeds") if "seeds" in raw else ()
    if "command" in raw:
        command = words(raw["command"], f"{where}.command")
        if "overrides" in raw or "lr" in raw or not command:
            raise ValueError(f"{where}: a command arm has command and lr_from, no overrides or lr")
        if "{out}" not in " ".join(command):
            raise ValueError(f"{where}.command: must write its run.json to {{out}} (allowed: {' '.join(PLACEHOLDERS)})")
        return Arm(name, command=command, lr_from=raw.get("lr_from"), seeds=seeds)
    lr = raw.get("lr")
    if not isinstance(lr, list) or not lr:
        raise ValueError(f"{where}.lr: a list of learning rates (one rate: no search), e.g. [3e-4, 1e-3, 3e-3]")
    for i, value in enumerate(lr):
        require(f"{where}.lr.{i}", value, positive())
    if len(set(lr)) != len(lr):
        raise ValueError(f"{where}.lr={lr}: a rate appears twice")
    if "lr_from" in raw:
        raise ValueError(f"{where}.lr_from: only a command arm takes its rate from another arm")
    return Arm(name, overrides=words(raw.get("overrides", []), f"{where}.overrides"), lr=tuple(lr), seeds=seeds)


def unknown(raw: dict[str, Any], known: set[str], prefix: str) -> None:
    if extra := sorted(set(raw) - known):
        raise ValueError(f"{prefix}{extra[0]}: no such field; allowed: {', '.join(sorted(known))}")


def mapping(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if not isinstance(value, dict):
        raise ValueError(f"{key}: a mapping is required (see conf/study/smoke.yaml)")
    return value


def text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}={value!r}: a metric key of run.json, e.g. val/accuracy")
    return value


def words(value: Any, field: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple | ListConfig | DictConfig) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{field}={value!r}: a list of strings")
    return tuple(value)


def seed_list(value: Any, field: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{field}={value!r}: a list of integer seeds, e.g. [1, 2, 3]")
    for i, seed in enumerate(value):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"{field}.{i}={seed!r}: an integer seed")
    if len(set(value)) != len(value):
        raise ValueError(f"{field}={value}: a seed appears twice")
    return tuple(value)
