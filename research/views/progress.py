"""Lightning's progress bar, with evaluation counted in examples and named by its stage:

    zero_shot (examples):  45%|████▌     | 45/100 [01:10<01:25, 0.64examples/s]

`progress_bar=rich` shows Lightning's Rich bar instead (the `rich` package), counted the same way.

Lightning's own evaluation bars count batches as anonymous iterations ("Testing DataLoader 0: 2/5"),
which reads as examples when the batch size is unknown. Evaluation batches come longest first
(data.sort_eval_by_length), so the time left shown early is an upper bound."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from pytorch_lightning.callbacks import RichProgressBar, TQDMProgressBar
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
        self._done = 0
        bar.total = examples_in(loader, batches)
        bar.set_description(f"{stage} (examples)")

    def _advance(self, bar: Tqdm, batch: Any) -> None:
        self._done += len(batch["input_ids"])
        if not bar.disable:
            bar.n = self._done
            bar.refresh()


class RichEvalProgress(RichProgressBar):
    """Lightning's Rich bar; an evaluation task is re-totalled in examples and named by its stage when its
    first batch starts, and advanced by each batch's examples."""

    def __init__(self) -> None:
        super().__init__()
        self._done = 0

    def on_validation_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                                  batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        super().on_validation_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0 and not trainer.sanity_checking:
            self._start(self.val_progress_bar_id, trainer.val_dataloaders, self.total_val_batches_current_dataloader,
                        "val")  # fmt: skip

    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        if trainer.sanity_checking:
            super().on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)
        else:
            self._advance(self.val_progress_bar_id, batch)

    def on_test_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                            batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        super().on_test_batch_start(trainer, pl_module, batch, batch_idx, dataloader_idx)
        if batch_idx == 0:
            self._start(self.test_progress_bar_id, trainer.test_dataloaders, self.total_test_batches_current_dataloader,
                        pl_module.stage)  # fmt: skip

    def on_test_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                          batch_idx: int, dataloader_idx: int = 0) -> None:  # fmt: skip
        self._advance(self.test_progress_bar_id, batch)

    def _start(self, task: Any, loader: Any, batches: float, stage: str) -> None:
        self._done = 0
        if self.progress is not None and task is not None:
            style = self.theme.description
            description = f"[{style}]{stage} (examples)" if style else f"{stage} (examples)"
            self.progress.update(task, total=examples_in(loader, batches), description=description)

    def _advance(self, task: Any, batch: Any) -> None:
        self._done += len(batch["input_ids"])
        self._update(task, self._done)


def examples_in(loader: Any, batches: float) -> int:
    """This process's examples (its sampler's share under DDP), within the trainer's batch limit."""
    return int(min(len(loader.sampler), batches * loader.batch_size))


def _in_examples(bar: Tqdm) -> Tqdm:
    bar.unit = "examples"
    return bar


BARS = {"tqdm": EvalProgress, "rich": RichEvalProgress}  # the config's `progress_bar` choices


def progress_callbacks(trainer: DictConfig, bar: str = "tqdm") -> list[pl.Callback]:
    """The bar, where the trainer config shows one (Lightning refuses a bar with enable_progress_bar=false)."""
    return [BARS[bar]()] if trainer.get("enable_progress_bar", True) else []
