"""The run record, `run.json`: the single source that compare, resume and skip-on-relaunch read.
W&B and CSV logs are views of it. Written atomically (temp file + rename), so a killed run leaves a
complete file saying `running`, never a truncated one."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1
RUN_FILE = "run.json"
PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "pytorch-lightning",
    "hydra-core",
    "datasets",
    "evaluate",
    "wandb",
)
# Config keys that do not change what a run computes: excluded from the config hash (a resumed run
# has the same hash as the run it continues).
VOLATILE_KEYS = ("paths", "hydra", "logger", "callbacks", "tags", "resume", "ckpt_path", "push_to_hub")


@dataclass
class RunRecord:
    status: str  # running | completed | failed
    method: str
    model: str
    data: str
    config: dict[str, Any]
    config_hash: str
    schema: int = SCHEMA
    seed: int | None = None
    params: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, int] = field(default_factory=dict)  # last checkpoint: step and epoch
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    error: str | None = None

    @classmethod
    def start(cls, config: dict[str, Any], method: str, model: str, data: str) -> RunRecord:
        return cls(
            status="running",
            method=method,
            model=model,
            data=data,
            seed=config.get("seed"),
            config=config,
            config_hash=config_hash(config),
            versions=library_versions(),
            git_commit=git_commit(),
        )

    def complete(self) -> None:
        self.status, self.finished_at = "completed", time.time()

    def fail(self, err: BaseException) -> None:
        self.status, self.finished_at = "failed", time.time()
        self.error = "".join(traceback.format_exception_only(type(err), err)).strip()

    def write(self, run_dir: Path) -> Path:
        return write_json_atomic(run_dir / RUN_FILE, asdict(self))

    @contextmanager
    def recorded(self, run_dir: Path) -> Iterator[RunRecord]:
        """Written when the run starts, then as completed, or as failed with the error: never lost."""
        self.write(run_dir)
        try:
            yield self
            self.complete()
        except BaseException as err:
            self.fail(err)
            raise
        finally:
            self.write(run_dir)


def read_record(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / RUN_FILE
    return json.loads(path.read_text()) if path.exists() else None


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def config_hash(config: dict[str, Any]) -> str:
    """Hash of what determines the result (not where it is written or how it is logged)."""
    relevant = {k: v for k, v in config.items() if k not in VOLATILE_KEYS}
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def library_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None
