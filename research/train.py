"""Train, evaluate and record one run:  peftlab train [overrides]   (or python -m research.train)

The entry point stays light: Hydra composes the config and research/schema.py checks it before torch,
transformers or peft are imported, so `--help` and a wrong value answer in a second or two. The run itself
is research/pipeline.py: build (method, optimizer, data, base model) -> zero-shot -> fit -> save -> test.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from research.configs import config_dir
from research.errors import reported
from research.schema import check_config
from research.tracking import relaunch


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="train")
def main(cfg: DictConfig) -> float | None:
    """One job; in a multirun it is skipped when already completed and a failure does not end the sweep.
    Returns `optimized_metric` (default test/loss) for sweepers such as Optuna."""
    if relaunch.is_multirun():  # a bad job is recorded as failed (build checks again) and the sweep goes on
        from research.pipeline import train

        return relaunch.run_sweep_job(cfg, train)
    with reported("train"):
        check_config(cfg)
        from research.pipeline import train  # the heavy imports, once the config is known to be sound

        return relaunch.objective(train(cfg).metrics, cfg)


if __name__ == "__main__":
    main()
