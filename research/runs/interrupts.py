"""Stop signals (SIGTERM, SIGINT) as an exception, so that a stopped run says `interrupted` and exits non-zero.

SLURM preempts a job with SIGTERM, Ctrl+C sends SIGINT. Left alone, SIGTERM outside `Trainer.fit` kills the
process on the spot (run.json keeps saying `running`), and inside it Lightning 2.6 only sets a flag that
ends fit() with `SIGTERMException`: a SystemExit without a code, so the process exits 0 as if it had
succeeded. Inside `raising()` the first SIGTERM or SIGINT raises `Interrupted` where the process is instead:
the record, the loggers and W&B are closed on the way out, and, uncaught, it exits with 128 + the signal
number (143 for SIGTERM, 130 for SIGINT), as a process killed by that signal would.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Interrupted(SystemExit):
    """A stop signal arrived. A SystemExit, so that `except Exception` (a sweep job catching failures)
    does not swallow it and an uncaught one exits silently with status 128 + signum."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def signal_of(err: BaseException) -> int | None:
    """The stop signal behind `err`: ours, Lightning's SIGTERM exit (other DDP ranks), or a plain Ctrl+C."""
    from pytorch_lightning.utilities.exceptions import SIGTERMException  # here: record readers skip Lightning

    if isinstance(err, Interrupted):
        return err.signum
    if isinstance(err, SIGTERMException):
        return signal.SIGTERM
    if isinstance(err, KeyboardInterrupt):
        return signal.SIGINT
    return None


@contextmanager
def raising() -> Iterator[None]:
    """Inside: the first SIGTERM or SIGINT raises `Interrupted`; later ones are only logged, so that closing
    the record and the loggers is not itself cut short. The previous handlers come back on exit. Lightning
    keeps calling this handler during fit/test (it chains the handler it finds). Signals can only be handled
    in the main thread: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    stopping = False

    def handler(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            log.warning("%s again: already stopping (SIGKILL stops at once)", signal.Signals(signum).name)
            return
        stopping = True
        raise Interrupted(signum)

    previous = {s: signal.getsignal(s) for s in SIGNALS}
    for s in SIGNALS:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
