"""The run record, `run.json`: the single source that compare, resume and skip-on-relaunch read.
W&B and CSV logs are views of it. Written atomically (temp file + rename), so a killed run leaves a
complete file saying `running`, never a truncated one; strict JSON (a NaN metric is written as null and
named in `non_finite_metrics`), so any JSON reader takes it. Read leniently: a record that cannot be read
(truncated by a full disk or a copy, edited by hand) is reported once and skipped, never an error that
stops another run or sweep."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

from research.runs import interrupts
from research.runs.sweep_root import sweep_root

log = logging.getLogger(__name__)
SCHEMA = 1
RUN_FILE = "run.json"
PACKAGES = (  # their versions in every record
    "peftlab",
    "torch",
    "transformers",
    "peft",
    "pytorch-lightning",
    "hydra-core",
    "datasets",
    "rouge-score",  # the metrics' own code decides the scores
    "sacrebleu",
    "wandb",
)
# Config keys that do not change what a run computes: excluded from the config hash (a resumed run
# has the same hash as the run it continues).
VOLATILE_KEYS = (
    *("paths", "hydra", "logger", "callbacks", "tags", "resume", "overwrite", "ckpt_path", "push_to_hub"),
    *("progress_bar", "local"),  # how a run is shown, this machine's accounts
)
# What every reader of a record indexes (compare, summaries, skip-on-relaunch): a record without one of
# these, or with another type, is skipped like an unreadable one.
REQUIRED = {
    "status": str,
    "config_hash": str,
    "method": str,
    "model": str,
    "data": str,
    "config": dict,
    "metrics": dict,
    "params": dict,
    "timing": dict,
    "memory": dict,
}
# `_target_` paths of this package that moved, hashed under their first path (see config_hash).
HASHED_AS = {"research.loop.optim.warmup_schedule": "research.optim.warmup_schedule"}
# Fields added after records began, at the default that computes what every run did before them. A record
# without one ran at that default; a config that leaves one there is hashed without it (see config_hash).
ADDED_FIELDS: dict[tuple[str, str], Any] = {("optimizer", "head_lr"): None}
_reported: set[Path] = set()  # unreadable records already warned about (once each per process)


@dataclass
class RunRecord:
    status: str  # running | completed | failed | interrupted (SIGTERM, SIGINT)
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
    sweep_root: str | None = None  # a multirun job's sweep (research/runs/sweep_root.py)
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
            sweep_root=str(root) if (root := sweep_root()) else None,
        )

    @classmethod
    def of(cls, record: dict[str, Any]) -> RunRecord:
        """A record read from run.json (`read_record`), as the object a run returns."""
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})

    def complete(self) -> None:
        self.status, self.finished_at = "completed", time.time()

    def fail(self, err: BaseException) -> None:
        """`interrupted` for a stop signal (SIGTERM, SIGINT), else `failed` with the error."""
        self.finished_at = time.time()
        if signum := interrupts.signal_of(err):
            self.status, self.error = "interrupted", f"interrupted by {signal.Signals(signum).name}"
        else:
            self.status = "failed"
            self.error = "".join(traceback.format_exception_only(type(err), err)).strip()

    def write(self, run_dir: Path) -> Path:
        data, non_finite = finite(asdict(self))
        if non_finite:
            data["non_finite_metrics"] = non_finite
        return write_json_atomic(run_dir / RUN_FILE, data)

    @contextmanager
    def recorded(self, run_dir: Path) -> Iterator[RunRecord]:
        """Written when the run starts, then as completed, as failed with the error, or as interrupted by
        SIGTERM/SIGINT (which raise `Interrupted` inside: exit status 128 + signal): never lost."""
        self.write(run_dir)
        try:
            with interrupts.raising():
                yield self
        except BaseException as err:
            self.fail(err)
            self._write_failure(run_dir)
            if self.status == "interrupted":
                log.warning("%s, recorded in %s; resume=auto continues it", self.error, run_dir / RUN_FILE)
            raise
        self.complete()
        self.write(run_dir)

    def _write_failure(self, run_dir: Path) -> None:
        """Record the failure, unless the disk refuses (full): then say so and let the original error
        through; run.json keeps its last complete version (`running`), which resume=auto continues."""
        try:
            self.write(run_dir)
        except OSError as err:
            log.error("%s; it still says %r", err, (read_record(run_dir) or {}).get("status"))


def finite(record: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """`record` with NaN and infinities as None (JSON has no such numbers), and where they were: a metric
    by its name (test/loss), any other value by its dotted path (config.trainer.gradient_clip_val)."""
    found: list[str] = []

    def clean(value: Any, path: str) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            found.append(path.removeprefix("metrics."))
            return None
        if isinstance(value, dict):
            return {k: clean(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return clean(record, ""), found


def read_record(run_dir: Path) -> dict[str, Any] | None:
    """The record in `run_dir`, or None: when there is none, and when it cannot be read or lacks what
    readers need (warned once per file, naming it, then skipped like a missing one)."""
    path = Path(run_dir) / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return _unreadable(path, f"not readable JSON ({err})")
    if not isinstance(record, dict):
        return _unreadable(path, f"a JSON {type(record).__name__}, not an object")
    if wrong := [k for k, kind in REQUIRED.items() if not isinstance(record.get(k), kind)]:
        return _unreadable(path, f"missing or malformed {', '.join(wrong)}")
    return record


def _unreadable(path: Path, why: str) -> None:
    if path not in _reported:
        _reported.add(path)
        log.warning("skipping %s: %s; delete or fix it to silence this", path, why)


def write_json_atomic(path: Path, data: dict[str, Any]) -> Path:
    """Strict JSON (NaN refused), written as `write_atomic` writes."""
    return write_atomic(path, json.dumps(data, indent=2, default=str, allow_nan=False).encode())


def write_atomic(path: Path, data: bytes) -> Path:
    """`data` to a temp file, then renamed over `path`: readers see the old file or the new one, never a
    mix. Mode 0644, like any file the user writes. A failure names the file."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), 0o644)
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise OSError(err.errno, f"could not write {path} ({err.strerror or err})") from err
        raise
    return path


def config_hash(config: dict[str, Any]) -> str:
    """Hash of what determines the result (not where it is written or how it is logged). A function of
    this package is hashed under the path it had when records began (`HASHED_AS`), so moving a module
    never makes an earlier run of the same config look like another one (skip, resume, W&B names); so is a
    field added since, left at its default (`ADDED_FIELDS`): the hash is the one the run had before the field."""
    relevant = {k: _hashed_targets(v) for k, v in config.items() if k not in VOLATILE_KEYS}
    for (section, key), default in ADDED_FIELDS.items():
        if isinstance(relevant.get(section), dict) and relevant[section].get(key, default) == default:
            relevant[section].pop(key, None)
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _hashed_targets(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: HASHED_AS.get(v, v) if k == "_target_" else _hashed_targets(v) for k, v in node.items()}
    return node


def library_versions() -> dict[str, str]:
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit() -> str | None:
    """The checkout's commit, when the code that runs is a checkout's research/; None when it is an installed
    wheel, even one in a virtual environment inside some repository (whose commit says nothing of this code)."""
    package = Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel", "HEAD"], capture_output=True, text=True, timeout=5, cwd=package
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = out.stdout.split()
    if out.returncode != 0 or len(lines) != 2 or Path(lines[0]).resolve() != package.parent:
        return None
    return lines[1]
