"""The loop's own callback, which every training run gets (not optional, so not in conf/callbacks/): it makes
resuming exact."""

from __future__ import annotations

import random

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
