"""The loop's own callbacks, which every training run gets (not optional, so not in conf/callbacks/): one makes
resuming exact, one tells training time from the validation inside fit."""

from __future__ import annotations

import random
import time

import numpy as np
import pytorch_lightning as pl
import torch


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


class ValidationClock(pl.Callback):
    """Seconds spent in validation loops during fit (the sanity check included): each epoch's validation generates
    text, so fit's wall time mixes training with evaluation, and methods would compare on their generation
    speed. The run records fit, validation and training (their difference) apart."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started: float | None = None

    def on_validation_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.perf_counter()

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._started is not None:
            self.seconds += time.perf_counter() - self._started
            self._started = None
