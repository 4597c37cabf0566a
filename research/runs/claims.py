"""A job folder is claimed before a sweep job runs in it, so two launches of the same sweep folder never
write over each other's records: the second one leaves a claimed job to the process that holds it.

The claim is a file, `job.lock`, naming the holder (pid, host, time). It appears whole or not at all
(written aside, then hard-linked into place: atomic, also on NFS) and is removed when the job ends, failed
or interrupted too. A claim left by a process that died without removing it (SIGKILL, a crash) is stale:
taken over when its pid is dead on this host. A holder on another host cannot be checked from here: its
claim is respected, and the message names the file to delete if that process is gone.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = "job.lock"


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    claimed_at: float

    @classmethod
    def me(cls) -> Holder:
        return cls(os.getpid(), socket.gethostname(), time.time())

    def is_me(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def is_dead(self) -> bool:
        """Known dead: a pid that no longer exists on this host. Another host's: never known."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # exists, owned by another user
            return False
        return False

    def describe(self, lock: Path) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.claimed_at))
        return f"pid {self.pid} on {self.host} since {since} (delete {lock} if that process is gone)"


@contextmanager
def claimed(job_dir: Path) -> Iterator[Holder | None]:
    """Claim `job_dir` for the body. Yields None when this process holds it, else the live holder (and
    the body must leave the folder alone). A stale claim is taken over. Released on exit when held."""
    lock = Path(job_dir) / LOCK_FILE
    other = _acquire(lock)
    try:
        yield other
    finally:
        if other is None and (held := holder(lock)) is not None and held.is_me():
            lock.unlink(missing_ok=True)


def holder(lock: Path) -> Holder | None:
    """The holder named in `lock`, None when there is no lock. An unreadable lock (written by hand, or
    by another version) counts as held by an unknown process on an unknown host."""
    try:
        return Holder(**json.loads(lock.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        return Holder(pid=-1, host="<unreadable lock>", claimed_at=time.time())


def active_holder(job_dir: Path) -> Holder | None:
    """Whoever holds `job_dir` now, unless the claim is stale."""
    held = holder(Path(job_dir) / LOCK_FILE)
    return None if held is None or held.is_dead() else held


def _acquire(lock: Path) -> Holder | None:
    """Claim `lock` (None), or return its live holder. A stale claim is removed and claiming tried again."""
    for _ in range(3):
        if _link_new(lock):
            return None
        held = holder(lock)
        if held is not None and not held.is_dead():
            return held
        if held is not None:
            _remove_stale(lock, held)
    return holder(lock) or Holder(-1, "<contended by other launches>", time.time())


def _link_new(lock: Path) -> bool:
    """Create `lock` naming this process, atomically; False if it exists."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.tmp")
    aside.write_text(json.dumps(asdict(Holder.me())))
    try:
        os.link(aside, lock)
    except FileExistsError:
        return False
    finally:
        aside.unlink()
    return True


def _remove_stale(lock: Path, stale: Holder) -> None:
    """Remove a dead holder's claim. Moved aside first, then checked: if another launch took the stale claim
    over in between, the claim moved aside is that live one, and is put back."""
    aside = lock.with_name(f".{lock.name}.{os.getpid()}.stale")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return  # another launch removed it first
    if holder(aside) != stale:
        with suppress(FileExistsError):  # a third launch claimed it meanwhile: it holds the job now
            os.link(aside, lock)
    aside.unlink()
