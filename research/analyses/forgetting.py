"""Catastrophic forgetting: the language-modelling loss (mean token negative log-likelihood, nats) of
held-out general text, scored on the base model before fine-tuning and on the fine-tuned model after.
`forgetting/delta` > 0 means the model got worse at text it was not fine-tuned on.
`forgetting/untrained` scores the strategy as injected, before any step: the base itself for LoRA,
adapters and full fine-tuning, but the base behind the initial soft prompt for prompt tuning, whose
prompt changes the score by itself (`after - untrained` is then what training did).

Causal LMs score each passage as a continuation (its first token has no context and is not scored);
seq2seq models score it as the decoder's target given an empty source (each task's `passage`). Passages
are right-padded, so padding never sits before a scored token, and every method (soft prompts included)
scores the same tokens. Enabled by `callbacks=forgetting` (conf/callbacks/forgetting.yaml).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytorch_lightning as pl
import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.config.fields import positive, require
from research.data.sources import read_jsonl, read_labelled_lines
from research.methods.base import Method
from research.tasks import Task

FORMATS = ("text", "jsonl", "sst2")  # one passage per line | a string field per JSON line | "<label> <sentence>"


def load_texts(path: str | None, format: str = "text", field: str = "text", limit: int | None = None) -> list[str]:
    """The first `limit` non-empty passages of a local file (read with the data sources' own checks)."""
    if format not in FORMATS:
        raise ValueError(f"callbacks.forgetting.format={format!r}; allowed: {', '.join(FORMATS)}")
    if not path:
        raise ValueError("callbacks.forgetting.path is not set: name a local file of held-out general text")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"callbacks.forgetting.path={path!r} is not a file")
    if format == "text":
        texts = file.read_text(encoding="utf-8").splitlines()
    elif format == "sst2":
        texts = [row["sentence"] for row in read_labelled_lines(file)]
    else:
        rows = list(read_jsonl(file))
        if any(not isinstance(row.get(field), str) for row in rows):
            raise ValueError(f"callbacks.forgetting.field={field!r}: not a string field of every line of {file}")
        texts = [row[field] for row in rows]
    texts = [t.strip() for t in texts if t.strip()]
    return texts[:limit] if limit else texts


@torch.no_grad()
def mean_nll(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    task: Task,
    batch_size: int = 16,
    max_length: int = 128,
) -> tuple[float, int]:
    """(mean token NLL over all scored tokens of `texts`, number of scored tokens), in eval mode."""
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(
            texts[start : start + batch_size],
            padding=True,
            padding_side="right",
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        ).to(device)
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)  # padding is never scored
        inputs, labels = task.passage(tokenizer, enc, labels)
        scored = task.label_count(labels)
        loss = model(**inputs, labels=labels).loss  # mean over the scored tokens of the batch
        total += float(loss) * scored
        count += scored
    model.train(was_training)
    if count == 0:
        raise ValueError("callbacks.forgetting: no token to score (one-token passages, or a limit too small)")
    return total / count, count


class ForgettingProbe(pl.Callback):
    """Scores the held-out passages on the base (adapters off, no soft prompt) and on the untrained
    method when fit starts, and on the fine-tuned model when it ends."""

    def __init__(
        self,
        path: str | None,
        format: str = "text",
        field: str = "text",
        limit: int | None = 100,
        max_length: int = 128,
        batch_size: int = 16,
    ) -> None:
        require("callbacks.forgetting.batch_size", batch_size, positive("int"))
        require("callbacks.forgetting.max_length", max_length, positive("int"))
        self.texts = load_texts(path, format, field, limit)  # a missing file fails before any model loads
        self.max_length, self.batch_size = max_length, batch_size
        self.metrics: dict[str, float] = {}

    def preflight(self, task: Task, method: Method) -> None:
        if not task.generates:
            raise ValueError(f"callbacks.forgetting scores language-model loss; model.task={task.value} has none")

    def score(self, model: nn.Module, pl_module: pl.LightningModule) -> tuple[float, int]:
        return mean_nll(model, pl_module.tokenizer, self.texts, pl_module.task, self.batch_size, self.max_length)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        """Before a checkpoint is restored (a resumed run scores the fresh base too, not the restored one)."""
        if stage != "fit":
            return
        with pl_module.method.base_model(pl_module.model) as base:
            before, tokens = self.score(base, pl_module)
        untrained, _ = self.score(pl_module.model, pl_module)
        self.metrics = {"forgetting/before": before, "forgetting/untrained": untrained}
        self.metrics |= {"forgetting/tokens": tokens, "forgetting/passages": len(self.texts)}

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        after, _ = self.score(pl_module.model, pl_module)
        before = self.metrics["forgetting/before"]
        self.metrics |= {"forgetting/after": after, "forgetting/delta": after - before}
        self.metrics |= {"forgetting/ppl_before": math.exp(before), "forgetting/ppl_after": math.exp(after)}
        for lg in trainer.loggers:
            lg.log_metrics(self.metrics)
            lg.save()  # `fit` has already finalized the loggers: flush now (the CSV logger buffers)
