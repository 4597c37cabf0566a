"""Callbacks every training run gets (not optional, so not in conf/callbacks/): they make resuming exact
and keep run.json current."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from research.tracking.checkpoints import CheckpointListener
from research.tracking.record import RunRecord


class EpochSeed(pl.Callback):
    """Reseed every RNG at each epoch start from (seed, epoch). Lightning checkpoints do not hold RNG
    states, so without this a run resumed at epoch e would draw other dropout masks than the run that was
    never stopped; with it (and the epoch-seeded sampler) resuming at an epoch boundary is exact."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        seed = self.seed + trainer.current_epoch
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)


class RecordProgress(CheckpointListener):
    """Rewrite run.json once each checkpoint is complete on disk (AtomicCheckpoint says when): a killed run
    shows `running` with its last checkpointed step, and `progress` never names a checkpoint still being
    written."""

    def __init__(self, record: RunRecord, run_dir: Path) -> None:
        self.record, self.run_dir = record, run_dir

    def on_checkpoint_written(self, trainer: pl.Trainer, path: Path) -> None:
        self.record.progress = {"checkpoint_step": trainer.global_step, "checkpoint_epoch": trainer.current_epoch}
        self.record.write(self.run_dir)
