"""`train`: open the run, build, score the base zero-shot, fit, save the weights, test."""

from __future__ import annotations

import logging

import pytorch_lightning as pl
from omegaconf import DictConfig

from research.config import build_node
from research.loop.callbacks import EpochSeed, ValidationClock
from research.pipeline.building import WEIGHTS, Built, assemble, full_weights
from research.pipeline.scores import described, test
from research.runs import relaunch
from research.runs.memory import model_bytes
from research.runs.record import RunRecord
from research.runs.run import Run

log = logging.getLogger(__name__)


def train(cfg: DictConfig) -> RunRecord:
    if done := relaunch.completed_here(cfg):
        log.info(
            "%s holds this config's completed run: left as it is (overwrite=true trains it again)", cfg.paths.output_dir
        )
        return RunRecord.of(done)
    run = Run.training(cfg)
    cfg = run.cfg  # with the checkpoint that resume=auto continues
    with run:
        pl.seed_everything(cfg.seed, workers=True)
        callbacks = [build_node(c) for c in (cfg.callbacks or {}).values()]
        built = assemble(cfg, callbacks=callbacks)
        run.built(*described(built))
        clock = ValidationClock()
        trainer = run.trainer([*callbacks, EpochSeed(cfg.seed), clock], training=True)
        if cfg.test and cfg.zero_shot:
            with run.timed("zero_shot_eval_s"):
                run.record.metrics |= test(trainer, built, "zero_shot")
        if cfg.train:
            with run.timed("fit_s"):
                trainer.fit(built.module, datamodule=built.datamodule, ckpt_path=cfg.ckpt_path)
            fitted(run, trainer, built, clock.seconds)
        if cfg.test:
            with run.timed("test_eval_s"):
                run.record.metrics |= test(trainer, built, "test")
        for callback in callbacks:
            run.record.metrics |= getattr(callback, "metrics", {})
        run.record.memory = model_bytes(built.module.model)
    return run.close()


def fitted(run: Run, trainer: pl.Trainer, built: Built, validation_s: float) -> None:
    """After fit: its time (training apart from validation), throughput and validation scores recorded, the
    method's weights saved by rank 0. A fit resumed from the checkpoint of its end trained nothing: the
    attempt that trained keeps its cost and scores."""
    timing = run.record.timing
    if built.module.tokens_seen == 0 and (earlier := run.earlier_fit()):  # resumed after fit had ended
        timing |= earlier[0]
        run.record.metrics |= earlier[1]
    else:
        timing["val_s"], timing["train_s"] = validation_s, timing["fit_s"] - validation_s
        timing["train_tokens_per_s"] = built.module.tokens_seen / timing["train_s"]
        run.record.metrics |= {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/")}
    run.record.artifacts["injected"] = built.module.method.describe(built.module.model)  # AdaLoRA's ranks moved
    with full_weights(trainer):
        if run.writes:
            run.saved(built.module.method.save(built.module.model, run.dir / WEIGHTS))
