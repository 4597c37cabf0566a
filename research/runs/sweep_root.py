"""Which sweep a multirun job belongs to: where skip-on-relaunch and `resume=auto` look, and its W&B group.

A sweep folder named by its launch time (`${now:...}` in hydra.sweep.dir, as the default
outputs/<task_name>/multiruns/<time> is) belongs to the sweep rooted at the path before that part: every
launch of the same task from the same place is one sweep, re-launched. A folder named without the time
(hydra.sweep.dir=X) is a sweep of its own: launching again with the same hydra.sweep.dir=X continues it,
and an unrelated sweep next to it (hydra.sweep.dir=Y) never skips or resumes X's jobs.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf


def is_multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def sweep_root() -> Path | None:
    """This job's sweep root (absolute), None outside a multirun."""
    if not is_multirun():
        return None
    hydra = HydraConfig.get()
    template = [p for p in str(OmegaConf.to_container(hydra.sweep, resolve=False)["dir"]).split("/") if p]
    timed = next((i for i, part in enumerate(template) if "${now:" in part), len(template))
    folder = (Path(hydra.runtime.cwd) / hydra.sweep.dir).resolve()
    return folder.parents[len(template) - timed - 1] if timed < len(template) else folder
