"""Evaluate without training:  peftlab evaluate [overrides] [run_dir=outputs/.../<run>]

`run_dir=null` scores the base model zero-shot (metrics `zero_shot/*`). A training run's folder scores its
saved weights (metrics `test/*`): the run's own model, method and seed rebuild its base exactly (this
command's `model.<key>=` overrides on top), and the method named in its run.json loads the weights. The data
and generation settings are the run's own unless this command names `data` or `generation`, so a run can be
scored on another dataset (`data=...`). Writes run.json and examples.jsonl to
this job's own output folder, as `train` does. The work itself is research/pipeline/evaluation.py.
"""

from __future__ import annotations

from omegaconf import DictConfig

from research.command import hydra_command, reported
from research.config.schema import check_config


@hydra_command("evaluate")
def main(cfg: DictConfig) -> None:
    with reported("evaluate"):
        check_config(cfg)
        from research.pipeline import evaluate  # the heavy imports, once the config is known to be sound

        evaluate(cfg)


if __name__ == "__main__":
    main()
