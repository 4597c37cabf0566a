"""The evidence a study keeps beside its tables: each run's run.json and predictions (never weights), copied from
the runs folder into results/<study>/runs with the same layout, and the study as it ran. A kept record names no
folder of the machine that ran it: absolute paths under the working directory become relative to it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from omegaconf import OmegaConf

from research.compare.study_table import STUDY_FILE
from research.runs.predictions import FILE, GZIP_FILE, predictions_path
from research.runs.record import RUN_FILE, write_atomic
from research.study.spec import Study


def portable(text: str, cwd: Path) -> str:
    """`text` with this machine's absolute paths under `cwd` (and beside it: ../shared) written relative to it."""
    return text.replace(f"{cwd}{os.sep}", "").replace(f"{cwd.parent}{os.sep}", f"..{os.sep}")


def keep(runs_root: Path, kept: Path, study: Study) -> int:
    """Copy every run's record and predictions under `runs_root` to `kept`; returns how many runs were kept."""
    cwd = Path.cwd().resolve()
    count = 0
    for record in sorted(runs_root.rglob(RUN_FILE)):
        target = kept / record.parent.relative_to(runs_root)
        target.mkdir(parents=True, exist_ok=True)
        write_atomic(target / RUN_FILE, portable(record.read_text(), cwd).encode())
        if (predictions := predictions_path(record.parent)) is not None:
            for stale in (target / FILE, target / GZIP_FILE):  # the other form, from an earlier copy
                stale.unlink(missing_ok=True)
            shutil.copyfile(predictions, target / predictions.name)
        count += 1
    kept.mkdir(parents=True, exist_ok=True)
    write_atomic(kept / STUDY_FILE, OmegaConf.to_yaml(OmegaConf.create(study.as_dict())).encode())
    return count
