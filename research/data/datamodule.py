"""The LightningDataModule: load and check every row -> cap -> template -> tokenize (`datasets.map`) -> collate."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytorch_lightning as pl
import torch
from datasets import Dataset, DatasetDict
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from research.data.collate import Collator
from research.data.labels import check_label_names
from research.data.sampler import EpochSampler, LengthOrder
from research.data.sources import load_splits
from research.data.templates import check_template, render

if TYPE_CHECKING:
    from research.tasks import Task

log = logging.getLogger(__name__)
TRUNCATION = ("warn", "error")  # what to do when inputs exceed max_source_length


class DataModule(pl.LightningDataModule):
    """Built by `instantiate(cfg.data, tokenizer=..., task=..., chat_template=...)`; `task` is a task or its
    name (research/tasks). `label_names` (classification) lists the classes in index order."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        task: str | Task,
        *,
        name: str,
        format: str,
        path: str | None = None,
        hub_id: str | None = None,
        hub_name: str | None = None,
        hub_splits: dict[str, str] | None = None,
        files: dict[str, str] | None = None,
        input_field: str = "input",
        target_field: str | None = "target",
        reference_fields: list[str] | None = None,
        label_field: str | None = None,
        label_names: list[str] | None = None,
        group_references: bool = False,
        template: str | None = None,
        chat_template: bool = False,
        num_examples: int = 0,
        train_limit: int | None = None,
        eval_limit: int | None = None,
        test_limit: int | None = None,
        max_source_length: int = 512,
        max_target_length: int = 128,
        truncation: str = "warn",
        batch_size: int = 8,
        group_by_length: bool = False,
        eval_batch_size: int = 16,
        sort_eval_by_length: bool = True,
        num_workers: int = 0,
        seed: int = 0,
    ) -> None:
        super().__init__()
        from research.tasks import Task  # here, not at the top: the tasks import this package's padding

        task = Task.parse(task)
        check_template(template)
        check_task_fields(task, label_field, label_names)
        if truncation not in TRUNCATION:
            raise ValueError(f"data.truncation={truncation!r}; allowed: {', '.join(TRUNCATION)}")
        if chat_template and not getattr(tokenizer, "chat_template", None):
            raise ValueError("model.chat_template=true but this tokenizer has no chat template")
        self.tokenizer, self.task, self.name = tokenizer, task, name
        self.label_names = check_label_names(label_names)  # for run.json; None: integer labels as they are
        self.source = dict(
            format=format, path=path, hub_id=hub_id, hub_name=hub_name, hub_splits=hub_splits, files=files,
            input_field=input_field, target_field=target_field, reference_fields=reference_fields,
            label_field=label_field, label_names=self.label_names, group_references=group_references,
            num_examples=num_examples, seed=seed,
        )  # fmt: skip
        self.template, self.chat_template, self.seed = template, chat_template, seed
        self.limits = {"train": train_limit, "validation": eval_limit, "test": test_limit}
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.truncation, self.group_by_length, self.sort_eval_by_length = (
            truncation,
            group_by_length,
            sort_eval_by_length,
        )
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.collate = Collator(tokenizer.pad_token_id, task)
        self.splits: DatasetDict | None = None
        self.truncated: dict[str, int] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        raw = load_splits(**self.source)
        splits = {}
        for split, ds in raw.items():
            limit = self.limits.get(split)
            if limit is not None:
                ds = ds.select(range(min(limit, len(ds))))
            splits[split] = self._tokenize(ds, train=split == "train")
            self.truncated[split] = int(sum(splits[split]["truncated"]))
        self.splits = DatasetDict(splits)
        self._check_truncation()

    def _check_truncation(self) -> None:
        """Inputs longer than max_source_length lose their end: say how many, or refuse (truncation=error)."""
        if not any(self.truncated.values()):
            return
        sizes = {split: len(ds) for split, ds in self.splits.items()}
        counts = ", ".join(f"{split}: {n} of {sizes[split]}" for split, n in self.truncated.items() if n)
        message = f"inputs longer than data.max_source_length={self.max_source_length} tokens were cut ({counts})"
        if self.truncation == "error":
            raise ValueError(f"{message}; raise data.max_source_length or set data.truncation=warn")
        log.warning(message)

    def prompt(self, text: str, *, train: bool, index: int) -> str:
        prompt = render(self.template, text, train=train, seed=self.seed, index=index)
        if self.chat_template:
            prompt = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
            )
        return prompt

    def _tokenize(self, ds: Dataset, *, train: bool) -> Dataset:
        def one(example: dict, index: int) -> dict:
            prompt = self.prompt(example["input"], train=train, index=index)
            return self.task.encode(example, prompt, self.tokenizer, self.max_source_length, self.max_target_length)

        drop = [c for c in ds.column_names if c != "references" or train]
        return ds.map(one, with_indices=True, remove_columns=drop, desc="tokenize")

    def loader(self, split: str, batch_size: int, shuffle: bool = False) -> DataLoader:
        """Any split as a DataLoader (research.evaluate scores a chosen split). Training: shuffled in an
        order that depends only on (seed, epoch), so resumed runs see the same batches. Evaluation: rows
        carry their `index` in the split, in length order when `sort_eval_by_length`."""
        assert self.splits is not None, "call setup() first"
        if split not in self.splits:
            raise ValueError(f"data {self.name!r} has no {split!r} split; it has {list(self.splits)}")
        ds = self.splits[split].remove_columns("truncated")
        sampler = None
        if shuffle:
            lengths = [len(ids) for ids in ds["input_ids"]]
            sampler = EpochSampler(lengths, batch_size, self.seed, group_by_length=self.group_by_length)
        else:
            ds = ds.add_column("index", list(range(len(ds))))
            if self.sort_eval_by_length:
                sampler = LengthOrder(eval_lengths(ds))
        return DataLoader(
            ds,
            batch_size=batch_size,
            sampler=sampler,
            collate_fn=self.collate,
            num_workers=self.num_workers,
            generator=torch.Generator().manual_seed(self.seed),  # worker seeds: not drawn from the global RNG
        )

    def train_dataloader(self) -> DataLoader:
        return self.loader("train", self.batch_size, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self.loader("validation", self.eval_batch_size, shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self.loader("test", self.eval_batch_size, shuffle=False)


def eval_lengths(ds: Dataset) -> list[int]:
    """What sets an evaluation batch's cost: the prompt that generation continues (decoder-only), else the input."""
    column = "prompt_ids" if "prompt_ids" in ds.column_names else "input_ids"
    return [len(ids) for ids in ds[column]]


def check_task_fields(task: Task, label_field: str | None, label_names: list[str] | None) -> None:
    """A task with a head (classification) reads a label field and generation a target: the wrong pairing would
    fail mid-tokenization."""
    if task.has_head and not label_field:
        raise ValueError(f"model.task={task} needs data.label_field (the field holding each example's class)")
    if not task.has_head and label_field:
        raise ValueError(
            f"data.label_field={label_field!r} is classification data, but the model generates text; "
            "use a classification model (model.task=classification) or data.label_field=null with a data.target_field"
        )
    if label_names is not None and not label_field:
        raise ValueError("data.label_names is set but data.label_field is null: name the label field")
