"""Whether the `research` package Python imports is peftlab's. PyPI's `research` project installs a package
of the same name: its research/__init__.py replaces ours, or its folder comes first on sys.path, and imports
would then fail far from the cause, or run another project's code. Stdlib only: checked on every command's way
in (research/config/__init__.py, research/cli.py) at no cost."""

from __future__ import annotations

import sys

MARK = "peftlab"
REPAIR = "pip uninstall research && pip install --force-reinstall peftlab"


def clash() -> str | None:
    """What is wrong and how to repair it, or None when `research` is peftlab's."""
    package = sys.modules["research"]
    if getattr(package, "DISTRIBUTION", None) == MARK:
        return None
    return (
        f"the `research` package imported from {package.__file__} is not peftlab's (its __init__.py lacks "
        f"DISTRIBUTION = {MARK!r}): another project named `research` (PyPI's) was installed over peftlab or "
        f"comes first on sys.path. Repair: {REPAIR} (from a checkout: pip install --force-reinstall -e .)"
    )


def check() -> None:
    """Raises ImportError naming the clash, if there is one."""
    if message := clash():
        raise ImportError(message)
