"""How a bad input reaches the user of `train` and `evaluate`: one line, `<command>: <message>`, and exit
status 1. Hydra trims only its own frames from an error, so every check of ours (a wrong value, a missing
file, a bad line of data) would otherwise arrive under a traceback through our modules and the libraries
below them, which reads as a crash of the framework. HYDRA_FULL_ERROR=1 keeps the traceback, as Hydra's
own errors do, for debugging the framework itself."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

USER_ERRORS = (ValueError, OSError)  # what the checks raise: a value not allowed, a file missing or unreadable


@contextmanager
def reported(command: str) -> Iterator[None]:
    """Around a single run: a user error leaves as SystemExit, which Hydra passes through untouched. Any
    other exception is a bug of the framework and keeps its traceback."""
    try:
        yield
    except USER_ERRORS as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        raise SystemExit(f"{command}: {err}") from None
