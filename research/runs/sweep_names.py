"""Sweep job folders named by what the sweep varies: `2_lora_r4`, `5_lora_seed2_r4`, `3_adapter`, instead
of `2_lora` for every rank.

conf/hydra/default.yaml names a job's folder `${hydra.job.num}_${method.name}${job_label:}`: `job_label`
writes each of the job's overrides as `<last part of the key><value>` (a config group's choice as the choice
alone), sanitised for a folder name, leaving out `hydra.job.config.override_dirname.exclude_keys`, Hydra's
own list of overrides that do not name a job. Before the jobs start, `SweepNames` adds to that list every
override that is the same in every job (`trainer.max_steps=1` given once on the command line), so only the
swept values remain; each job re-reads the launch's Hydra overrides, which is how the list reaches it.
"""

from __future__ import annotations

import re
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, read_write

MAX_CHARS = 120  # a folder name stays far below the file systems' 255
UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def job_label(*, _root_: DictConfig) -> str:
    """`_`-prefixed label of this job's naming overrides, or "" when there are none."""
    hydra = _root_.hydra
    exclude = set(hydra.job.config.override_dirname.exclude_keys)
    parts = []
    for override in OverridesParser.create().parse_overrides(list(hydra.overrides.task)):
        key = override.key_or_group
        if key in exclude:
            continue
        value = override.get_value_element_as_str()
        parts.append(value if key in hydra.runtime.choices else key.rsplit(".", 1)[-1] + value)
    label = UNSAFE.sub("-", "_".join(parts)).strip("-")[:MAX_CHARS]
    return f"_{label}" if label else ""


def register() -> None:
    if not OmegaConf.has_resolver("job_label"):
        OmegaConf.register_new_resolver("job_label", job_label)


class SweepNames(Callback):
    """Hydra callback: leave the overrides every job shares out of the job folder names."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        overrides = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
        fixed = [o.key_or_group for o in overrides if not o.is_sweep_override()]
        exclude = [*config.hydra.job.config.override_dirname.exclude_keys, *fixed]
        keys = ",".join(f"'{key}'" for key in exclude)
        with read_write(config.hydra.overrides):
            config.hydra.overrides.hydra.append(f"hydra.job.config.override_dirname.exclude_keys=[{keys}]")
