"""Hydra callback: refuse a run or a sweep whose output folder takes no files (a full disk, no permission)
before Hydra writes into it, naming the folder. Left to Hydra, the first write (.hydra/config.yaml) fails
with a bare `OSError: No space left on device` that names no path."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from research.checks import check_writable


class WritableOutput(Callback):
    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(Path(config.hydra.run.dir), "hydra.run.dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        _check(Path(config.hydra.sweep.dir), "hydra.sweep.dir")


def _check(directory: Path, field: str) -> None:
    try:
        check_writable(directory, field)
    except ValueError as err:
        print(f"Error: {err}", file=sys.stderr)
        sys.exit(1)
