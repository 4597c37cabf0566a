"""The fixed training batches every side consumes, and the fixed generation rows.

All sides read the same examples in the same order through the same collation, each through its own
framework's loader, so that one step of ours and one step of a baseline do identical work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from torch import nn
from torch.utils.data import DataLoader

from research.bench.resources import train_flops
from research.data import DataModule
from research.data.collate import Collator
from research.data.sampler import EpochSampler

TRAIN_COLUMNS = ("input_ids", "labels")  # the collator derives attention_mask


@dataclass
class TrainWorkload:
    examples: Dataset  # exactly `steps * batch_size` examples, in training order
    collate: Collator
    batch_size: int
    tokens_per_step: list[int]  # non-padding input tokens of each batch (what tokens/s counts)
    flops_per_step: list[float]  # model FLOPs each step needs (resources.train_flops; NaN where not counted)

    def loader(self) -> DataLoader:
        return DataLoader(self.examples, batch_size=self.batch_size, collate_fn=self.collate)

    @property
    def steps(self) -> int:
        return len(self.tokens_per_step)


def train_workload(datamodule: DataModule, steps: int, model: nn.Module) -> TrainWorkload:
    """The first `steps` batches of the DataModule's own training order (its sampler, epoch after epoch
    when the split is shorter), keeping only the model's inputs; `model` for the FLOP count."""
    split = datamodule.splits["train"]
    lengths = [len(ids) for ids in split["input_ids"]]
    sampler = EpochSampler(lengths, datamodule.batch_size, datamodule.seed, datamodule.group_by_length)
    order: list[int] = []
    while len(order) < steps * datamodule.batch_size:
        sampler.set_epoch(len(order) // len(split))
        order += list(sampler)
    examples = split.select(order[: steps * datamodule.batch_size])
    examples = examples.remove_columns([c for c in examples.column_names if c not in TRAIN_COLUMNS])
    collate = Collator(datamodule.tokenizer.pad_token_id, datamodule.task)
    work = TrainWorkload(examples, collate, datamodule.batch_size, [], [])
    for batch in work.loader():
        work.tokens_per_step.append(int(batch["attention_mask"].sum()))
        flops = train_flops(model, batch)
        work.flops_per_step.append(float("nan") if flops is None else flops)
    return work


def eval_rows(datamodule: DataModule, n: int) -> list[dict[str, Any]]:
    """The first `n` test examples (validation if there is no test split), as collator features."""
    split = "test" if "test" in datamodule.splits else "validation"
    ds = datamodule.splits[split]
    return [ds[i] for i in range(min(n, len(ds)))]
