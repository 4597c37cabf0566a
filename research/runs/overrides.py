"""This job's command line: its Hydra overrides, and which of them its sweep varies. They name the run
(W&B), fill the model card's command, and go to run.json. Outside a Hydra app (a notebook, a test that
composes a config) there is no command line."""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from research.runs.relaunch import is_multirun

LAUNCH_CONFIG = "multirun.yaml"  # Hydra's basic sweeper saves the launch's config in the sweep folder


def task_overrides() -> list[str] | None:
    """The overrides this job was composed with (a sweep job: its own values), None outside Hydra."""
    return list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else None


def swept() -> dict[str, str]:
    """This job's value of each key its multirun varies, in launch order: the keys of the sweeper's
    `params` (a sweep config, Optuna's search space) and the launch's own sweeps (`-m key=a,b`, read from
    the launch config Hydra keeps in the sweep folder). Empty outside a multirun."""
    if not is_multirun():
        return {}
    hydra = HydraConfig.get()
    launch = [f"{k}={v}" for k, v in (hydra.sweeper.get("params") or {}).items()]
    saved = Path(hydra.sweep.dir) / LAUNCH_CONFIG
    if saved.is_file():
        launch += list(OmegaConf.load(saved).hydra.overrides.task)
    parser = OverridesParser.create()
    keys = [o.key_or_group for o in parser.parse_overrides(launch) if o.is_sweep_override()]
    job = {o.key_or_group: o.get_value_element_as_str() for o in parser.parse_overrides(list(hydra.overrides.task))}
    return {k: job[k] for k in dict.fromkeys(keys) if k in job}


def launch() -> dict[str, list[str] | dict[str, str] | None]:
    """What run.json keeps of the command line: the job's overrides and its swept values."""
    return {"overrides": task_overrides(), "swept": swept()}
