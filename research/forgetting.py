"""Catastrophic forgetting: the language-modelling loss (mean token negative log-likelihood, nats) of
held-out general text, scored on the base model before fine-tuning and on the fine-tuned model after.
`forgetting/delta` > 0 means the model got worse at text it was not fine-tuned on.
`forgetting/untrained` scores the strategy as injected, before any step: the base itself for LoRA,
adapters and full fine-tuning, but the base behind the initial soft prompt for prompt tuning, whose
prompt changes the score by itself (`after - untrained` is then what training did).

Causal LMs score each passage as a continuation (its first token has no context and is not scored);
seq2seq models score it as the decoder's target given an empty source. Passages are right-padded, so
padding never sits before a scored token, and every method (soft prompts included) scores the same
tokens. Enabled by the `forgetting:` block of conf/train.yaml; train.py calls `before_fit` / `after_fit`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.data.sources import read_jsonl, read_labelled_lines
from research.methods.base import FineTuneModule, positive

FORMATS = ("text", "jsonl", "sst2")  # one passage per line | a string field per JSON line | "<label> <sentence>"


def load_texts(path: str | None, format: str = "text", field: str = "text", limit: int | None = None) -> list[str]:
    """The first `limit` non-empty passages of a local file (read with the data sources' own checks)."""
    if format not in FORMATS:
        raise ValueError(f"forgetting.format={format!r}; allowed: {', '.join(FORMATS)}")
    if not path:
        raise ValueError("forgetting.path is not set: name a local file of held-out general text")
    file = Path(path).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"forgetting.path={path!r} is not a file")
    if format == "text":
        texts = file.read_text(encoding="utf-8").splitlines()
    elif format == "sst2":
        texts = [row["sentence"] for row in read_labelled_lines(file)]
    else:
        rows = list(read_jsonl(file))
        if any(not isinstance(row.get(field), str) for row in rows):
            raise ValueError(f"forgetting.field={field!r}: not a string field of every line of {file}")
        texts = [row[field] for row in rows]
    texts = [t.strip() for t in texts if t.strip()]
    return texts[:limit] if limit else texts


@torch.no_grad()
def mean_nll(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    texts: list[str],
    task: str,
    batch_size: int = 16,
    max_length: int = 128,
) -> tuple[float, int]:
    """(mean token NLL over all scored tokens of `texts`, number of scored tokens), in eval mode."""
    if task not in ("causal", "seq2seq"):
        raise ValueError(f"forgetting scores language-model loss; model.task={task!r} has none (causal, seq2seq)")
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
        labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        if task == "causal":
            labels[:, 0] = -100  # no context: never predicted, also not from a soft prompt's last token
            inputs = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
            scored = int((labels[:, 1:] != -100).sum())
        else:
            source = tokenizer([""] * len(labels), return_tensors="pt").to(device)
            inputs = {"input_ids": source["input_ids"], "attention_mask": source["attention_mask"]}
            scored = int((labels != -100).sum())
        loss = model(**inputs, labels=labels).loss  # mean over the scored tokens of the batch
        total += float(loss) * scored
        count += scored
    model.train(was_training)
    if count == 0:
        raise ValueError("forgetting: no token to score (passages of one token, or forgetting.limit too small)")
    return total / count, count


@dataclass
class Probe:
    """The held-out passages and the base model's score on them, kept from before `fit` to after."""

    texts: list[str]
    batch_size: int
    max_length: int
    before: float = math.nan
    untrained: float = math.nan
    tokens: int = 0

    def score(self, model: nn.Module, module: FineTuneModule) -> tuple[float, int]:
        return mean_nll(model, module.tokenizer, self.texts, module.task, self.batch_size, self.max_length)


def before_fit(settings: Mapping[str, Any] | None, module: FineTuneModule) -> Probe | None:
    """Score the base model (adapters off, no soft prompt) and the untrained strategy; None unless
    `forgetting.enabled`."""
    if not settings or not settings.get("enabled"):
        return None
    probe = Probe(
        load_texts(
            settings.get("path"), settings.get("format", "text"), settings.get("field", "text"), settings.get("limit")
        ),
        settings.get("batch_size", 16),
        settings.get("max_length", 128),
    )
    positive("forgetting.batch_size", probe.batch_size)
    positive("forgetting.max_length", probe.max_length)
    with module.base_model() as base:
        probe.before, probe.tokens = probe.score(base, module)
    probe.untrained, _ = probe.score(module.model, module)
    return probe


def after_fit(probe: Probe | None, module: FineTuneModule, loggers: list) -> None:
    """Score the fine-tuned model; `forgetting/*` into `module.results` (hence run.json) and the loggers."""
    if probe is None:
        return
    after, _ = probe.score(module.model, module)
    results = {
        "forgetting/before": probe.before,
        "forgetting/untrained": probe.untrained,
        "forgetting/after": after,
        "forgetting/delta": after - probe.before,
        "forgetting/ppl_before": math.exp(probe.before),
        "forgetting/ppl_after": math.exp(after),
        "forgetting/tokens": probe.tokens,
        "forgetting/passages": len(probe.texts),
    }
    module.results.update(results)
    for lg in loggers:
        lg.log_metrics(results)
        lg.save()  # `fit` has already finalized the loggers: flush now (the CSV logger buffers)
