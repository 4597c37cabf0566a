"""Lightning's progress bar, with evaluation counted in examples and named by its stage:

    zero_shot (examples):  45%|████▌     | 45/100 [01:10<01:25, 0.64examples/s]

Lightning's own evaluation bars count batches as anonymous iterations ("Testing DataLoader 0: 2/5"),
which reads as examples when the batch size is unknown. Evaluation batches come longest first
(data.sort_eval_by_length), so the time left shown early is an upper bound."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import TQDMProgressBar
from pytorch_lightning.callbacks.progress.tqdm_progress import Tqdm


class EvalProgress(TQDMProgressBar):
    def __init__(self) -> None:
        super().__init__()
        self._done = 0

    def init_validation_tqdm(self) -> Tqdm:
        return _in_examples(super().init_validation_tqdm())

    def init_test_tqdm(self) -> Tqdm:
        return _in_examples(super().init_test_tqdm())

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                                  batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0:
            self._start(
                self.val_progress_bar, trainer.val_dataloaders, self.total_val_batches_current_dataloader, "val"
            )

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        self._advance(self.val_progress_bar, batch)

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                            batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0:
            self._start(
                self.test_progress_bar, trainer.test_dataloaders, self.total_test_batches_current_dataloader,
                pl_module.stage,
            )  # fmt: skip

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        self._advance(self.test_progress_bar, batch)

    def _start(self, bar: Tqdm, loader: Any, batches: float, stage: str) -> None:
        """This process's examples (its sampler's share under DDP), within the trainer's batch limit."""
        self._done = 0
        bar.total = int(min(len(loader.sampler), batches * loader.batch_size))
        bar.set_description(f"{stage} (examples)")

    def _advance(self, bar: Tqdm, batch: Any) -> None:
        self._done += len(batch["input_ids"])
        if not bar.disable:
            bar.n = self._done
            bar.refresh()


def _in_examples(bar: Tqdm) -> Tqdm:
    bar.unit = "examples"
    return bar


def progress_callbacks(trainer: DictConfig) -> list[pl.Callback]:
    """The bar, where the trainer config shows one (Lightning refuses a bar with enable_progress_bar=false)."""
    return [EvalProgress()] if trainer.get("enable_progress_bar", True) else []
