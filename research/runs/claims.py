"""A job folder is claimed before a job runs in it, so two launches into one folder never write over each
other's records: the second one leaves a claimed job to the process that holds it.

The claim is a file, `job.lock`, naming the holder: pid, host, the config it runs (its config hash), the
host's boot id and the process's start time. It appears whole or not at all (written aside, then
hard-linked into place: atomic, also on NFS) and is removed when the job ends, failed or interrupted too.
While held, a daemon thread refreshes the lock's mtime every HEARTBEAT_S: its heartbeat.

A claim that no process will ever remove (SIGKILL, a crash, a reboot) is stale and taken over, with a
warning naming the lock and why. It is stale when
- its holder ran on this host and is gone: the host has restarted since (another boot id), its pid is
  dead, or its pid now belongs to another process (pid reuse: another start time);
- or, for a holder that cannot be checked from here (another host's, an unreadable lock, a pid whose start
  time cannot be read), its heartbeat is older than STALE_AFTER_S.
A holder checked alive on this host is respected however old its heartbeat (a stopped process, Ctrl+Z,
still holds its job); no claim blocks a job beyond its holder's life, or STALE_AFTER_S where the holder
cannot be checked.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

log = logging.getLogger(__name__)
LOCK_FILE = "job.lock"
HEARTBEAT_S = 60.0  # how often a holder refreshes its lock's mtime
STALE_AFTER_S = 600.0  # a claim not refreshed for this long, whose holder cannot be checked, is stale
UNREADABLE = "<unreadable lock>"


@dataclass(frozen=True)
class Holder:
    """Who claimed a folder (as its lock says) and the lock's last heartbeat (its mtime, never written in it)."""

    pid: int
    host: str
    claimed_at: float
    config_hash: str = ""  # "": unknown (an unreadable lock, or one from before claims named their config)
    boot_id: str = ""  # "": unknown (not Linux)
    started: int = -1  # the process's start, clock ticks after boot (/proc/<pid>/stat field 22); -1: unknown
    beat_at: float = 0.0

    @classmethod
    def me(cls, config_hash: str) -> Holder:
        now = time.time()
        return cls(os.getpid(), socket.gethostname(), now, config_hash, _boot_id(), _start_ticks(os.getpid()), now)

    def is_me(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def well_formed(self) -> bool:
        """Fields of the types written (a lock edited by hand may hold anything; pid 0 or -1 is no process)."""
        texts = all(isinstance(v, str) for v in (self.host, self.config_hash, self.boot_id))
        numbers = isinstance(self.claimed_at, int | float) and isinstance(self.started, int)
        return texts and numbers and isinstance(self.pid, int) and self.pid > 0

    def why_stale(self) -> str | None:
        """Why this claim will never be released by its holder, None while the holder may be running."""
        if self.host == socket.gethostname():
            if self.boot_id and self.boot_id != _boot_id():
                return "this host has restarted since it was claimed"
            if not _pid_exists(self.pid):
                return f"pid {self.pid} has ended"
            if self.started >= 0 and (started := _start_ticks(self.pid)) >= 0:
                return None if started == self.started else f"pid {self.pid} now belongs to another process"
        age = time.time() - self.beat_at
        return f"not refreshed for {_duration(age)}" if age > STALE_AFTER_S else None

    def describe(self, lock: Path) -> str:
        beat = f"last refreshed {_duration(time.time() - self.beat_at)} ago"
        if self.host == UNREADABLE:
            return f"{lock} cannot be read ({beat}; taken over once not refreshed for {_duration(STALE_AFTER_S)})"
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.claimed_at))
        return f"pid {self.pid} on {self.host} since {since}, {beat} (delete {lock} if that process is gone)"


@contextmanager
def claimed(job_dir: Path, config_hash: str = "") -> Iterator[Holder | None]:
    """Claim `job_dir` for the body, for a run of `config_hash`. Yields None when this process holds it (its
    heartbeat refreshed meanwhile), else the live holder: the body must leave the folder alone. A stale claim
    is taken over. Released on exit when held."""
    lock = Path(job_dir) / LOCK_FILE
    other = _acquire(lock, config_hash)
    if other is not None:
        yield other
        return
    try:
        with _heartbeat(lock):
            yield None
    finally:
        if (held := holder(lock)) is not None and held.is_me():
            lock.unlink(missing_ok=True)


def holder(lock: Path) -> Holder | None:
    """The holder named in `lock`, None when there is no lock. An unreadable lock (written by hand, or by
    another version) counts as held by an unknown process on an unknown host, running an unknown config."""
    try:
        beat_at, text = lock.stat().st_mtime, lock.read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return _unreadable(lock)
    try:
        held = Holder(**json.loads(text), beat_at=beat_at)
    except (ValueError, TypeError):
        return _unreadable(lock)
    return held if held.well_formed() else _unreadable(lock)


def active_holder(job_dir: Path) -> Holder | None:
    """Whoever holds `job_dir` now, unless the claim is stale."""
    held = holder(Path(job_dir) / LOCK_FILE)
    return None if held is None or held.why_stale() else held


def _unreadable(lock: Path) -> Holder:
    """An unreadable lock, judged by its mtime alone (now, when it cannot even be stat'ed: never stale yet)."""
    try:
        beat_at = lock.stat().st_mtime
    except OSError:
        beat_at = time.time()
    return Holder(pid=-1, host=UNREADABLE, claimed_at=beat_at, beat_at=beat_at)


def _acquire(lock: Path, config_hash: str) -> Holder | None:
    """Claim `lock` (None), or return its live holder. A stale claim is removed and claiming tried again."""
    for _ in range(3):
        if _link_new(lock, Holder.me(config_hash)):
            return None
        held = holder(lock)
        if held is None:
            continue  # released meanwhile
        if (why := held.why_stale()) is None:
            return held
        _remove_stale(lock, held, why)
    return holder(lock) or Holder(-1, "<contended by other launches>", time.time(), beat_at=time.time())


def _link_new(lock: Path, me: Holder) -> bool:
    """Create `lock` naming `me`, atomically; False if it exists."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.tmp")
    aside.write_text(json.dumps({k: v for k, v in asdict(me).items() if k != "beat_at"}))
    try:
        os.link(aside, lock)
    except FileExistsError:
        return False
    finally:
        aside.unlink()
    return True


def _remove_stale(lock: Path, stale: Holder, why: str) -> None:
    """Remove a stale claim. Moved aside first, then checked: if another launch took the stale claim over in
    between (or its holder refreshed it), the claim moved aside is a live one, and is put back."""
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # another launch removed it first
    if holder(aside) == stale:
        log.warning("taking over the stale claim %s: %s (%s)", lock, why, stale.describe(lock))
    else:
        with suppress(FileExistsError):  # a third launch claimed it meanwhile: it holds the job now
            os.link(aside, lock)
    aside.unlink()


@contextmanager
def _heartbeat(lock: Path) -> Iterator[None]:
    """Refresh `lock`'s mtime every HEARTBEAT_S while the body runs: the sign of life that keeps a claim from
    going stale where its holder cannot be checked (another host)."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            if (held := holder(lock)) is not None and held.is_me():
                with suppress(OSError):
                    os.utime(lock)

    thread = threading.Thread(target=beat, name=f"heartbeat {lock}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _start_ticks(pid: int) -> int:
    """When `pid` started, in clock ticks after boot (/proc/<pid>/stat field 22); -1 where it cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat.rsplit(")", 1)[1].split()[19])  # the fields after `(comm)` start at field 3
    except (OSError, ValueError, IndexError):
        return -1


@cache
def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
