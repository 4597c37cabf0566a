"""Evaluate without training:  peftlab evaluate [overrides] [run_dir=outputs/.../<run>]

`run_dir=null` scores the base model zero-shot (metrics `zero_shot/*`). A training run's folder scores its
saved weights (metrics `test/*`): the run's own model, method and seed rebuild its base exactly, and the
method named in its run.json loads the weights. The data, split and generation settings are this
command's, so a run can be scored on another dataset (`data=...`). Writes run.json and examples.jsonl to
this job's own output folder, as `train` does.
"""

from __future__ import annotations

import time
from pathlib import Path

import hydra
import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from research.analyses import ExamplePredictions
from research.configs import config_dir
from research.methods.base import count_parameters
from research.progress import progress_callbacks
from research.runs import WEIGHTS, run_config
from research.tracking import RunRecord, memory
from research.tracking.summary import run_table
from research.train import build


def evaluate(cfg: DictConfig) -> RunRecord:
    out_dir = Path(cfg.paths.output_dir)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else None
    if run_dir:
        cfg = with_run_config(cfg, run_dir)
    method = cfg.method.name if run_dir else "zero_shot"
    record = RunRecord.start(OmegaConf.to_container(cfg, resolve=True), method, cfg.model.name, cfg.data.name)
    memory.reset_peak()
    with record.recorded(out_dir):
        pl.seed_everything(cfg.seed, workers=True)
        module, datamodule = build(cfg, weights=run_dir / WEIGHTS if run_dir else None)
        if run_dir:
            record.artifacts = {"run_dir": str(run_dir), "weights_dir": str(run_dir / WEIGHTS)}
        record.params = count_parameters(module.model)
        trainer: pl.Trainer = instantiate(
            cfg.trainer,
            default_root_dir=out_dir,
            logger=False,
            callbacks=[ExamplePredictions(), *progress_callbacks(cfg.trainer)],
        )
        stage = "test" if run_dir else "zero_shot"
        started = time.perf_counter()
        with module.scoring(stage, base=run_dir is None):
            loader = datamodule.loader(cfg.split, datamodule.eval_batch_size)
            results = trainer.test(module, dataloaders=loader, verbose=False)[0]
        record.timing["eval_s"] = time.perf_counter() - started
        results.pop(f"{stage}/eval_s")
        record.metrics, record.memory = results, memory.peak()
    print(run_table(record.__dict__))
    return record


def with_run_config(cfg: DictConfig, run_dir: Path) -> DictConfig:
    """The run's model, method and seed replace the composed ones: they define what its weights fit."""
    saved = run_config(run_dir)
    cfg = cfg.copy()
    with open_dict(cfg):
        cfg.model, cfg.method, cfg.seed = saved.model, saved.method, saved.seed
    return cfg


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="evaluate")
def main(cfg: DictConfig) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
