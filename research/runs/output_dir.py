"""`check_writable`, and a Hydra callback that uses it: refuse a run or a sweep whose output folder takes no files (a full disk, no permission)
before Hydra writes into it, naming the folder. Left to Hydra, the first write (.hydra/config.yaml) fails
with a bare `OSError: No space left on device` that names no path."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig


def check_writable(directory: Path, field: str = "paths.output_dir") -> None:
    """A directory must take files before hours of training go into it. The probe holds data (a page): a
    full disk still takes an empty file."""
    probe = directory / ".write-test"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as fh:
            fh.write(bytes(4096))
            fh.flush()
            os.fsync(fh.fileno())
        probe.unlink()
    except OSError as err:
        if probe.is_file():  # created, then refused its data
            probe.unlink()
        raise ValueError(f"{field}={str(directory)!r} is not writable ({err.strerror}); choose another") from err


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
