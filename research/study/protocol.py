"""The comparison protocol: every arm's learning-rate grid at the first seed, the rate chosen on a validation
metric (a winning edge of the grid extended once), the other seeds at the chosen rate, the base model scored
zero-shot once. Every step is a launch that skips completed jobs and resumes unfinished ones, so a stopped
study continues where it stopped, and a new arm or seed runs only what is missing."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from research.compare.records import latest_per_config, load_records
from research.study.choice import SEARCH, SEEDS, ZERO_SHOT, chosen_rate, extension, values
from research.study.launch import Launcher
from research.study.spec import Arm, Study

FINGERPRINT = "arm.json"  # the overrides an arm's folder was made with


class ArmFolderError(ValueError):
    """An arm's folder holds runs of other overrides: choosing a rate among them would mix two recipes."""


def launcher_only(override: str) -> bool:
    """Hydra's own settings (the launcher, its folders): how the runs are launched, not what they compute."""
    return override.lstrip("+~").startswith("hydra")


@dataclass
class Protocol:
    study: Study
    runs_root: Path  # <runs root>/<arm>/lr_search, <arm>/seeds, zero_shot
    launcher: Launcher
    arm_names: tuple[str, ...] = ()  # only these arms (two launches on disjoint arms share a machine)
    chosen: dict[str, float] = field(default_factory=dict)  # arm -> rate

    def arms(self) -> list[Arm]:
        return [a for a in self.study.arms if not self.arm_names or a.name in self.arm_names]

    def run(self) -> dict[str, float]:
        """Searches of every arm first (an interrupted study has looked at every arm), then seeds."""
        trained = [a for a in self.arms() if not a.command]
        for arm in trained:
            self.check_folder(arm)
        for arm in trained:
            self.search(arm)
        if self.study.zero_shot and not self.arm_names:
            self.launcher.evaluate(self.runs_root / ZERO_SHOT)
        for arm in trained:
            if arm.name in self.chosen and (seeds := self.study.seeds_of(arm)[1:]):
                self.launcher.train(
                    [*arm.overrides, f"method.lr={self.chosen[arm.name]:g}", f"seed={values(seeds)}"],
                    self.runs_root / arm.name / SEEDS,
                )
        for arm in self.arms():
            if arm.command:
                self.command(arm)
        return self.chosen

    def search(self, arm: Arm) -> None:
        first = self.study.seeds_of(arm)[0]
        folder = self.runs_root / arm.name / SEARCH
        self.launcher.train([*arm.overrides, f"method.lr={values(list(arm.lr))}", f"seed={first}"], folder)
        best = self.choose(arm)
        if best is not None and (next_rate := extension(self.study, arm, best)) is not None:
            print(f"study: arm {arm.name}: the grid's edge {best:g} won; {next_rate:g}, one step beyond, runs once")
            self.launcher.train([*arm.overrides, f"method.lr={next_rate:g}", f"seed={first}"], folder)
            best = self.choose(arm)
        if best is not None:
            self.chosen[arm.name] = best

    def choose(self, arm: Arm) -> float | None:
        search = latest_per_config(load_records([self.runs_root / arm.name / SEARCH]))
        rate = chosen_rate(self.study, arm, search)
        if rate is None and arm.searches:
            print(f"study: arm {arm.name}: no completed search run has {self.study.select_metric}: no seeds")
        return rate

    def check_folder(self, arm: Arm) -> None:
        """An arm's folder is made for its overrides (the study's runs, the command line's, the arm's; not its
        grid or seeds, which may grow). Other overrides there are refused, not mixed into the choice."""
        folder = self.runs_root / arm.name
        made = {"overrides": [o for o in (*self.launcher.run_overrides, *arm.overrides) if not launcher_only(o)]}
        path = folder / FINGERPRINT
        if path.is_file():
            before = json.loads(path.read_text())
            if before != made:
                raise ArmFolderError(
                    f"{folder} holds arm {arm.name}'s runs made with other overrides:\n  before: "
                    f"{' '.join(before['overrides'])}\n  now:    {' '.join(made['overrides'])}\n"
                    "give this study another --runs-dir, or delete that folder to start the arm again"
                )
            return
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(made, indent=1) + "\n")

    def command(self, arm: Arm) -> None:
        """A command arm at each seed, at the rate its `lr_from` arm chose."""
        lr = (self.chosen.get(arm.lr_from) or self.choose(self.study.arm(arm.lr_from))) if arm.lr_from else None
        if arm.lr_from and lr is None:
            print(f"study: arm {arm.name}: arm {arm.lr_from} has chosen no rate yet: not run")
            return
        for seed in self.study.seeds_of(arm):
            out = self.runs_root / arm.name / f"seed{seed}"
            rate = f"{lr:g}" if lr else ""
            words = [w.format(python=sys.executable, out=out, seed=seed, lr=rate) for w in arm.command]
            self.launcher.command(words, out)
