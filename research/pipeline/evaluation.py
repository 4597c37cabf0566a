"""`evaluate`: the same run's life as `train`, with job type `eval`: a trained run's weights (`run_dir=`),
or the base model zero-shot, scored on a split."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from omegaconf import DictConfig, open_dict

from research.analyses import ExamplePredictions
from research.config import build_node
from research.pipeline.building import WEIGHTS, assemble
from research.pipeline.rebuilding import run_config
from research.pipeline.scores import described, test
from research.runs import overrides, read_record
from research.runs.record import RunRecord
from research.runs.run import Run

log = logging.getLogger(__name__)


def evaluate(cfg: DictConfig) -> RunRecord:
    run_dir = Path(cfg.run_dir) if cfg.run_dir else None
    data_from = "command"
    if run_dir:
        cfg, data_from = with_run_config(cfg, run_dir)
    run = Run.evaluation(cfg, trained=read_record(run_dir) if run_dir else None)
    with run:
        pl.seed_everything(cfg.seed, workers=True)
        built = assemble(cfg, weights=run_dir / WEIGHTS if run_dir else None)
        run.built(*described(built, zero_shot=run_dir is None))
        if run_dir:
            run.record.artifacts |= {
                "run_dir": str(run_dir),
                "weights_dir": str(run_dir / WEIGHTS),
                "data_from": data_from,
            }
        trainer = run.trainer([examples_callback(cfg)], training=False)
        with run.timed("eval_s"):
            run.record.metrics = test(trainer, built, "test" if run_dir else "zero_shot", split=cfg.split)
    return run.close()


def examples_callback(cfg: DictConfig) -> pl.Callback:
    """The examples callback as configured (`callbacks.examples`, e.g. num_examples), else its defaults."""
    node = (cfg.get("callbacks") or {}).get("examples")
    return build_node(node) if node else ExamplePredictions()


def with_run_config(cfg: DictConfig, run_dir: Path) -> tuple[DictConfig, str]:
    """The run's model, method and seed replace the composed ones: they define what its weights fit. This
    command's overrides of their fields apply on top (`model.name_or_path=<folder>` when the base moved).
    The run's own data and generation settings are scored too, unless this command names `data` or
    `generation` (a group or any key of it). Returns the config and whose data it scores: `run` or
    `command` (always the composed one outside a Hydra command, where no override is known)."""
    given = overrides.task_overrides()
    fixed = [o for o in given or [] if _key(o).startswith(("model.", "method.")) or _key(o) == "seed"]
    saved = run_config(run_dir, fixed)
    cfg = cfg.copy()
    data_from = "command"
    with open_dict(cfg):
        cfg.model, cfg.method, cfg.seed = saved.model, saved.method, saved.seed
        for section in ("data", "generation"):
            if given is not None and not any(_key(o).split(".")[0] == section for o in given):
                cfg[section] = saved[section]
                data_from = "run" if section == "data" else data_from
    whose = "the run's own" if data_from == "run" else "this command's"
    log.info("scoring %s data: %s, split %s", whose, cfg.data.name, cfg.split)
    return cfg, data_from


def _key(override: str) -> str:
    """The key of a Hydra override (`+model.x=1` -> `model.x`)."""
    return override.split("=", 1)[0].lstrip("+~")
