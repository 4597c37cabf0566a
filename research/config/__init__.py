"""Where the Hydra configs are, in a source checkout and in the installed wheel alike.

The repository keeps conf/ at its top level, next to research/; the wheel carries the same files as
research/conf/ (pyproject.toml maps the package `research.conf` to conf/). The `sweep` group is part of
conf/ (conf/sweep links to sweeps/sweep; the wheel holds copies), so every primary config (train.yaml,
evaluate.yaml) and every compose() call sees it without a search-path plugin or `hydra.searchpath`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from research import ours

ours.check()  # every command passes here: another project's `research` package is named before it misleads
PACKAGE = Path(__file__).resolve().parent.parent  # research/


def config_dir() -> Path:
    """The absolute conf/ folder: research/conf/ when installed from the wheel, else the checkout's conf/.

    Absolute, because Hydra turns a relative `config_path` into `pkg://...` when the entry point runs as
    an imported module (a console script), and conf/ is not a package in a source checkout."""
    for candidate in (PACKAGE / "conf", PACKAGE.parent / "conf"):
        if (candidate / "train.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"no conf/train.yaml in {PACKAGE} or next to it: a broken install of peftlab")


def build_node(node: DictConfig, **kwargs: Any) -> Any:
    """Hydra's `instantiate`, re-raising our own validation error (or a missing file) instead of Hydra's
    wrapper around it, so the message starts with the field name."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        if isinstance(err.__cause__, ValueError | OSError):
            raise err.__cause__ from None
        raise ValueError(f"{node.get('_target_', node)}: {err}") from None
