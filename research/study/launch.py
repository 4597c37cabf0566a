"""How a study's steps run: each step is a `peftlab train --multirun` (or `evaluate`, or an arm's own command) in a
process of its own, so Hydra's configured launcher (basic, joblib, submitit) runs its jobs, on a laptop or a
cluster alike, and a step that fails leaves the others to run."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from research.runs.record import read_record

QUIET = ("trainer.enable_progress_bar=false",)  # a study's log is many runs': one line per epoch, no bars


def completed(run_dir: Path) -> bool:
    """Its run.json says so (an unreadable one is not completed: the step runs again and resumes)."""
    return (record := read_record(run_dir)) is not None and record["status"] == "completed"


class Launcher:
    """Runs a study's steps with the overrides every run gets (the study's `runs`, then the command line's), the
    W&B group set to the study's name (conf/logger/wandb.yaml reads WANDB_RUN_GROUP)."""

    def __init__(self, study_name: str, run_overrides: Sequence[str]) -> None:
        self.run_overrides = [*QUIET, *run_overrides]
        self.env = os.environ | {"WANDB_RUN_GROUP": study_name}
        self.failed: list[str] = []

    def train(self, overrides: Sequence[str], sweep_dir: Path) -> bool:
        """A multirun into `sweep_dir`: its completed jobs are skipped, unfinished ones resume."""
        return self._run(
            [sys.executable, "-m", "research.train", "--multirun", *self.run_overrides, *overrides]
            + ["zero_shot=false", "resume=auto", f"hydra.sweep.dir={sweep_dir}"],
            f"train {sweep_dir}",
        )

    def evaluate(self, run_dir: Path) -> bool:
        """The untouched base model scored once, on the study's data."""
        if completed(run_dir):
            return True
        command = [sys.executable, "-m", "research.evaluate", *self.run_overrides, f"hydra.run.dir={run_dir}"]
        return self._run(command, f"zero-shot {run_dir}")

    def command(self, words: Sequence[str], run_dir: Path) -> bool:
        """An arm's own program (a plain-loop control); skipped when its run.json says completed."""
        return completed(run_dir) or self._run(list(words), f"command {run_dir}")

    def _run(self, command: list[str], step: str) -> bool:
        print("study: " + shlex.join(command), flush=True)
        code = subprocess.run(command, env=self.env, check=False).returncode
        if code != 0:
            self.failed.append(f"{step}: exit {code}")
            print(f"study: {step} ended with exit {code}; the other steps go on (the tables list its runs)", flush=True)
        return code == 0
