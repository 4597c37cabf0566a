"""Optional features and the pyproject extra that installs each: a feature whose package is missing stops with
`pip install "peftlab[<extra>]"` before any model loads, not with an ImportError (or a quiet fallback) later.

Torch-free. Hydra's sweeper and launcher plugins are looked for before Hydra composes the config, since a
missing plugin fails the composition itself with a message that names neither the package nor the extra
(`research.command.hydra_command`); the config-driven features (a 4-bit base, TensorBoard) are checked with
the composed config (research/config/checks.py)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from omegaconf import OmegaConf

from research.config import config_dir


@dataclass(frozen=True)
class Extra:
    name: str  # the extra in pyproject.toml
    package: str  # the distribution it installs
    modules: tuple[str, ...]  # any one of these importable is enough


EXTRAS = {
    e.name: e
    for e in (
        Extra("qlora", "bitsandbytes", ("bitsandbytes",)),
        Extra("tensorboard", "tensorboard", ("tensorboard", "tensorboardX")),  # Lightning takes either
        Extra("search", "optuna", ("optuna",)),  # our sweeper (hydra_plugins/peftlab_optuna) is in the wheel
        Extra("slurm", "hydra-submitit-launcher", ("hydra_plugins.hydra_submitit_launcher",)),
    )
}
# Hydra group choices served by a plugin of an extra (conf/hydra/launcher/slurm.yaml extends submitit_slurm).
PLUGIN_CHOICES = {
    ("hydra/sweeper", "peftlab_optuna"): "search",
    ("hydra/launcher", "slurm"): "slurm",
    ("hydra/launcher", "submitit_slurm"): "slurm",
    ("hydra/launcher", "submitit_local"): "slurm",
}
COMPOSED_GROUPS = ("sweep", "experiment")  # groups whose files may choose a plugin in their defaults list


def installed(extra: str) -> bool:
    return any(_importable(module) for module in EXTRAS[extra].modules)


def require(extra: str, feature: str) -> None:
    """Raises ValueError naming the extra that `feature` (a config choice, as the user wrote it) needs."""
    if not installed(extra):
        package = EXTRAS[extra].package
        raise ValueError(f'{feature} needs {package}, which is not installed: pip install "peftlab[{extra}]"')


def check_plugins(overrides: Iterable[str]) -> None:
    """The Hydra plugins that the command line's overrides choose, directly (hydra/sweeper=peftlab_optuna) or through
    a sweep or experiment file (sweep=lr_search), are installed."""
    for feature, extra in plugin_needs(overrides):
        require(extra, feature)


def plugin_needs(overrides: Iterable[str]) -> Iterator[tuple[str, str]]:
    """(the override as written, the extra its plugin comes from) for each override that needs one."""
    for override in overrides:
        key, sep, value = override.lstrip("+~").partition("=")
        if not sep or override.startswith("-"):
            continue
        for choice in value.split(","):  # a multirun's choices: a,b
            if (key, choice) in PLUGIN_CHOICES:
                yield override, PLUGIN_CHOICES[key, choice]
            elif key in COMPOSED_GROUPS:
                for group_choice in _plugin_defaults(key, choice):
                    yield f"{key}={choice} (its {group_choice[0]}: {group_choice[1]})", PLUGIN_CHOICES[group_choice]


def _plugin_defaults(group: str, choice: str) -> list[tuple[str, str]]:
    """The (group, choice) pairs of a group file's defaults list that a plugin serves; none for a file that is
    not there (Hydra reports that itself)."""
    path = config_dir() / group / f"{choice}.yaml"
    if not path.is_file():
        return []
    found = []
    for entry in OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []):
        if isinstance(entry, dict):
            for key, value in entry.items():
                pair = (str(key).removeprefix("override ").strip().lstrip("/"), str(value))
                if pair in PLUGIN_CHOICES:
                    found.append(pair)
    return found


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (hydra_plugins) missing
        return False
