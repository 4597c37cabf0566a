"""What every command does before its work: keep library noise off the console (research/views/quiet.py)
and register the resolvers conf/ uses, then, for a Hydra command, compose the config from conf/.

How a bad input reaches the user of `train` and `evaluate`: one line, `<command>: <message>`, and exit
status 1. Hydra trims only its own frames from an error, so every check of ours (a wrong value, a missing
file, a bad line of data) would otherwise arrive under a traceback through our modules and the libraries
below them, which reads as a crash of the framework. HYDRA_FULL_ERROR=1 keeps the traceback, as Hydra's
own errors do, for debugging the framework itself."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore

from research.config import config_dir
from research.config.extras import check_plugins
from research.runs import sweep_names
from research.views import quiet

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


def started() -> None:
    """Before anything heavy is imported: bitsandbytes logs its notice while it is being imported."""
    quiet.install()
    sweep_names.register()  # the `${job_label:}` of conf/hydra/default.yaml, resolved in each sweep job's process


def share_config_store() -> None:
    """Hydra deep-copies its config repository for every config group it lists, and with it the ConfigStore
    singleton that holds every plugin's structured configs: `train --help` lists about 100 groups, and the
    copies were 80% of its time (2.5 to 4 s on 2 cores, 1 to 2 s without them). A copy is never needed, since the store is one per
    process; Hydra's own fix (facebookresearch/hydra#2928, not in a release yet) looks the singleton up
    instead of keeping it, which is what sharing it amounts to."""
    ConfigStore.__deepcopy__ = lambda self, memo: self  # type: ignore[method-assign]


def hydra_command(config_name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`hydra.main` on conf/<config_name>.yaml, once the command has `started`; the Hydra plugins that the
    command line chooses are looked for first (research/config/extras.py)."""
    started()
    share_config_store()

    def command(task: Callable[..., Any]) -> Callable[..., Any]:
        hydra_main = hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)(task)

        @functools.wraps(task)
        def main() -> Any:
            with reported(config_name):
                check_plugins(sys.argv[1:])
            return hydra_main()

        return main

    return command
