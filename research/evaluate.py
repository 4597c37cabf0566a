"""Evaluate without training:  peftlab evaluate [overrides] [run_dir=outputs/.../<run>]

`run_dir=null` scores the base model zero-shot (metrics `zero_shot/*`). A training run's folder scores its
saved weights (metrics `test/*`): the run's own model, method and seed rebuild its base exactly, and the
method named in its run.json loads the weights. The data, split and generation settings are this
command's, so a run can be scored on another dataset (`data=...`). Writes run.json and examples.jsonl to
this job's own output folder, as `train` does. The work itself is research/pipeline.py's `evaluate`.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from research.configs import config_dir
from research.errors import reported
from research.schema import check_config


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    with reported("evaluate"):
        check_config(cfg)
        from research.pipeline import evaluate  # the heavy imports, once the config is known to be sound

        evaluate(cfg)


if __name__ == "__main__":
    main()
