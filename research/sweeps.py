"""Puts the repository's `sweeps/` folder on Hydra's config search path, wherever the command runs from.

`hydra.searchpath` in conf/train.yaml would also do, but Hydra refuses it there because conf/evaluate.yaml
extends train.yaml (searchpath is read from the primary config only), and a relative `file://sweeps` only
works from the repository root. A SearchPathPlugin registered on import has neither limit: importing this
module (research.train does) is all it takes, and `sweep=<name>` then picks `sweeps/sweep/<name>.yaml`.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

SWEEPS_DIR = Path(__file__).resolve().parents[1] / "sweeps"


class SweepsSearchPath(SearchPathPlugin):
    """Appends `sweeps/` (absolute) after conf/, so conf/ always wins on a name clash."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        search_path.append(provider="research-sweeps", path=f"file://{SWEEPS_DIR}")


Plugins.instance().register(SweepsSearchPath)
