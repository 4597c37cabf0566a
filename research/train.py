"""Train, evaluate and record one run:  peftlab train [overrides]   (or python -m research.train)

The entry point stays light: Hydra composes the config and research/config/schema.py checks it before torch,
transformers or peft are imported, so `--help` and a wrong value answer in a second or two. The run itself
is research/pipeline/training.py: open the run, build, zero-shot, fit, save, test.
"""

from __future__ import annotations

from omegaconf import DictConfig

from research.command import hydra_command, reported
from research.config.schema import check_config
from research.runs import relaunch


@hydra_command("train")
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
