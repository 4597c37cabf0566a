"""The one training and evaluation loop, for every method: a LightningModule that *composes* a model
and the method that injected it. Steps, optimizer and schedule from config, generation-based
evaluation, metrics. What differs between methods lives in the method object (research/methods/), what
differs between tasks (loss, prediction, metrics) in the task object (research/tasks/).

`trainer.test` scores the split under a stage name (`test`, or `zero_shot` through `scoring(...)`,
which also switches to the untouched base) and returns the stage's metrics.

`Speed` switches how a step or an evaluation is computed, never what: the loss only at labelled
positions (research/loop/lm_loss.py) and one pass over an evaluation batch's prompt for both its loss and its
generation (research/loop/prefill.py); each falls back to the stock path where it does not apply. The evaluation loss is
the mean over every labelled token of the split, so it does not depend on how the split is batched or
ordered."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.config.speed import Speed
from research.methods.base import Method, in_head
from research.tasks import Task
from research.tasks.base import stock_forward


class FineTuneModule(pl.LightningModule):
    def __init__(
        self,
        *,
        model: nn.Module,
        method: Method,
        tokenizer: PreTrainedTokenizerBase,
        task: Task,
        optimizer: functools.partial,
        scheduler: functools.partial,
        generation: Mapping[str, Any],
        speed: Speed = Speed(),
        heads: tuple[str, ...] = (),
        head_lr: float | None = None,
    ) -> None:
        super().__init__()
        self.model, self.method, self.tokenizer, self.task = model, method, tokenizer, task
        self.make_optimizer, self.make_scheduler, self.generation = optimizer, scheduler, dict(generation)
        self.speed, self.heads, self.head_lr = speed, heads, head_lr
        self.stage, self._use_base = "test", False
        self.last_eval: dict[str, list] = {}  # the latest evaluation's rows, for the examples and predictions callbacks
        self.tokens_seen = 0  # non-padding input tokens trained on, for tokens/s
        self._eval: dict[str, list] = {}
        self._steps_done = 0
        self.strict_loading = False  # checkpoints hold only the trainable tensors

    @contextmanager
    def scoring(self, stage: str, base: bool = False) -> Iterator[None]:
        """`trainer.test` inside this block logs `<stage>/*`; `base=True` scores the untouched base."""
        previous = self.stage, self._use_base
        self.stage, self._use_base = stage, base
        try:
            yield
        finally:
            self.stage, self._use_base = previous

    # --- training ---------------------------------------------------------------------------
    def forward(self, batch: Mapping[str, Any], model: nn.Module | None = None) -> Any:
        """The stock forward: the model's own output (logits at every position, and the loss)."""
        return stock_forward(model or self.model, batch)

    def on_fit_start(self) -> None:
        """Models come from transformers in eval mode (dropout off): train mode before Lightning starts fitting."""
        self.model.train()

    def loss(self, batch: Mapping[str, Any], model: nn.Module | None = None) -> tuple[torch.Tensor, int]:
        """The batch's mean loss over its labelled tokens (rows, for a classifier) and their number."""
        return self.task.loss(model or self.model, batch, self.speed)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        loss, _ = self.loss(batch)
        self.tokens_seen += int(batch["attention_mask"].sum())
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """After an optimizer step (not after each accumulated micro-batch), while gradients still exist."""
        if self.trainer.global_step != self._steps_done:
            self._steps_done = self.trainer.global_step
            self.method.on_optimizer_step(self.model, self._steps_done)

    def param_groups(self) -> list[dict[str, Any]]:
        """The task head (`heads`) at `head_lr` in a group of its own, so every arm of a methods table trains its
        head at one rate; the rest at the method's `lr`. Without `head_lr` one group at the method's `lr`, as
        before the field existed (a run that leaves it unset computes and hashes what it did then)."""
        trainable = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        if self.head_lr is None:
            return [{"params": [p for _, p in trainable], "lr": self.method.lr}]
        head = [p for n, p in trainable if in_head(n, self.heads)]
        own = [p for n, p in trainable if not in_head(n, self.heads)]
        groups = [
            {"params": own, "lr": self.method.lr, "name": "method"},
            {"params": head, "lr": self.head_lr, "name": "head"},
        ]
        return [g for g in groups if g["params"]]

    def configure_optimizers(self) -> dict[str, Any]:
        optimizer = self.make_optimizer(self.param_groups(), lr=self.method.lr)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        warmup = self.make_scheduler.keywords.get("warmup_steps")
        if warmup is not None and warmup >= total:
            raise ValueError(f"scheduler.warmup_steps={warmup} is not shorter than the run ({total} optimizer steps)")
        scheduler = self.make_scheduler(optimizer, total_steps=total)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step", "name": "train/lr"},
        }

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        trainable = {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}
        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in trainable}

    # --- evaluation -------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._eval = {"index": [], "inputs": [], "predictions": [], "references": [], "losses": [], "tokens": []}

    def on_test_epoch_start(self) -> None:
        self.on_validation_epoch_start()

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._evaluate_batch(batch, self.model)

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        if self._use_base:
            with self.method.base_model(self.model) as base:
                self._evaluate_batch(batch, base)
        else:
            self._evaluate_batch(batch, self.model)

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics(self.stage)

    def _evaluate_batch(self, batch: Mapping[str, Any], model: nn.Module) -> None:
        n, seen = batch["input_ids"].shape[0], len(self._eval["index"])
        self._eval["index"] += batch.get("index", range(seen, seen + n))  # the split's order, put back at the end
        rows = self.task.evaluate(model, batch, self.tokenizer, self.generation, self.speed)
        self._eval["inputs"] += rows.inputs
        self._eval["predictions"] += rows.predictions
        self._eval["references"] += rows.references
        self._eval["losses"].append(float(rows.loss) * rows.count)
        self._eval["tokens"].append(rows.count)

    def _gathered(self) -> dict[str, list]:
        """This stage's rows from every process: under DDP each rank saw only its share of the split
        (DistributedSampler; when the split size is not a multiple of the number of processes it
        repeats a few examples to even the shares)."""
        ev = self._eval
        if self.trainer.world_size > 1:
            parts: list[dict[str, list]] = [{}] * self.trainer.world_size
            torch.distributed.all_gather_object(parts, ev)
            ev = {k: [v for p in parts for v in p[k]] for k in ev}
        order = sorted(range(len(ev["index"])), key=ev["index"].__getitem__)
        return ev | {k: [ev[k][i] for i in order] for k in ("index", "inputs", "predictions", "references")}

    def _log_metrics(self, stage: str) -> None:
        ev = self._gathered()
        if not ev.get("tokens"):
            return
        metrics = {"loss": sum(ev["losses"]) / sum(ev["tokens"])}
        metrics |= self.task.score(ev["predictions"], ev["references"])
        self.last_eval = {"stage": [stage], **{k: ev[k] for k in ("index", "inputs", "predictions", "references")}}
        metrics = {f"{stage}/{k}": v for k, v in metrics.items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)  # equal on every rank (gathered)

    def generate(self, batch: Mapping[str, Any], model: nn.Module | None = None, **encoded: Any) -> list[str]:
        return self.task.generate(model or self.model, self.tokenizer, batch, self.generation, **encoded)
