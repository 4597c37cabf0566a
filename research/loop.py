"""The one training and evaluation loop, for every method: a LightningModule that *composes* a model
and the method that injected it. Steps, optimizer and schedule from config, generation-based
evaluation, metrics. What differs between methods lives in the method object (research/methods/).

`trainer.test` scores the split under a stage name (`test`, or `zero_shot` through `scoring(...)`,
which also switches to the untouched base) and returns the stage's metrics.

`Speed` switches how a step or an evaluation is computed, never what: the loss only at labelled
positions (research/lm_loss.py) and one pass over an evaluation batch's prompt for both its loss and its
generation (research/prefill.py); each falls back to the stock path where it does not apply. The evaluation loss is
the mean over every labelled token of the split, so it does not depend on how the split is batched or
ordered."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.lm_loss import LMParts, causal_loss, label_count, lm_parts
from research.methods.base import Method
from research.metrics import classification_metrics, generation_metrics
from research.prefill import one_pass
from research.speed import Speed
from research.tasks import Task

MODEL_INPUTS = ("input_ids", "attention_mask", "labels")


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
    ) -> None:
        super().__init__()
        self.model, self.method, self.tokenizer, self.task = model, method, tokenizer, task
        self.make_optimizer, self.make_scheduler, self.generation = optimizer, scheduler, dict(generation)
        self.speed = speed
        self.stage, self._use_base = "test", False
        self.last_eval: dict[str, list] = {}  # the latest evaluation's rows: the examples callback reads them
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
        return (model or self.model)(**{k: batch[k] for k in MODEL_INPUTS})

    def on_fit_start(self) -> None:
        """Models come from transformers in eval mode (dropout off): train mode before Lightning starts fitting."""
        self.model.train()

    def loss(self, batch: Mapping[str, Any], model: nn.Module | None = None) -> tuple[torch.Tensor, int]:
        """The batch's mean loss over its labelled tokens (rows, for a classifier) and their number."""
        model = model or self.model
        if parts := self._lm_parts(model):
            return causal_loss(parts, batch)
        return self(batch, model).loss, label_count(batch["labels"], self.task)

    def _lm_parts(self, model: nn.Module) -> LMParts | None:
        """The decoder and head for the labelled-positions loss, where it is on and applies."""
        return lm_parts(model) if self.speed.target_logits and self.task is Task.CAUSAL else None

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

    def configure_optimizers(self) -> dict[str, Any]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = self.make_optimizer(params, lr=self.method.lr)
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
        self._eval_started = time.perf_counter()

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
        self._log_metrics(self.stage, eval_s=time.perf_counter() - self._eval_started)

    def _evaluate_batch(self, batch: Mapping[str, Any], model: nn.Module) -> None:
        n, seen = batch["input_ids"].shape[0], len(self._eval["index"])
        self._eval["index"] += batch.get("index", range(seen, seen + n))  # the split's order, put back at the end
        if not self.task.generates:
            out = self(batch, model)
            loss, count = out.loss, n
            self._eval["inputs"] += self.tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
            self._eval["predictions"] += out.logits.argmax(-1).tolist()
            self._eval["references"] += batch["labels"].tolist()
        else:
            shared = one_pass(model, self.task, batch, self.generation) if self.speed.shared_prefill else None
            loss, count, encoded = shared or (*self.loss(batch, model), {})
            prompts = batch["prompt_ids"] if self.task is Task.CAUSAL else batch["input_ids"]
            self._eval["inputs"] += self.tokenizer.batch_decode(prompts, skip_special_tokens=True)
            self._eval["predictions"] += self.generate(batch, model, **encoded)
            self._eval["references"] += batch["references"]
        self._eval["losses"].append(float(loss) * count)
        self._eval["tokens"].append(count)

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

    def _log_metrics(self, stage: str, **extra: float) -> None:
        ev = self._gathered()
        if not ev.get("tokens"):
            return
        metrics = {"loss": sum(ev["losses"]) / sum(ev["tokens"])}
        if self.task.generates:
            metrics.update(generation_metrics(ev["predictions"], ev["references"]))
        else:
            metrics.update(classification_metrics(ev["predictions"], ev["references"]))
        self.last_eval = {"stage": [stage], **{k: ev[k] for k in ("inputs", "predictions", "references")}}
        metrics = {f"{stage}/{k}": v for k, v in (metrics | extra).items()}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)  # equal on every rank (gathered)

    def generate(self, batch: Mapping[str, Any], model: nn.Module | None = None, **encoded: Any) -> list[str]:
        return generate(model or self.model, self.tokenizer, self.task, batch, self.generation, **encoded)


@torch.no_grad()
def generate(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    task: Task,
    batch: Mapping[str, Any],
    generation: Mapping[str, Any],
    **encoded: Any,
) -> list[str]:
    """Batched greedy (by default) generation; it stops when every row has produced EOS. A decoder-only
    model continues its left-padded prompt (`prompt_ids`) and the prompt is cut off its output; an
    encoder-decoder's output is the answer alone. `encoded`: the prompt already run through the model
    (research/prefill.py: a decoder-only `cache` of the prompt but its last token, or `encoder_outputs`)."""
    kwargs = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id, **generation, **encoded}
    if task is Task.CAUSAL:
        prompt = batch["prompt_ids"]
        out = model.generate(input_ids=prompt, attention_mask=batch["prompt_mask"], **kwargs)
        out = out[:, prompt.shape[1] :]
    else:
        out = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], **kwargs)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]
