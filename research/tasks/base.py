"""What a task is: everything that differs between the kinds of model a config can declare (`model.task`),
asked of one object, so that the data, the loop, the loading and the methods carry no per-task branches.

A task is a `str` (its name), so configs, run records and comparisons keep plain strings; each registered
task is one instance, so `task is Task.CAUSAL` holds, also after pickling or copying."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn
from transformers import PreTrainedTokenizerBase

from research.metrics import METRICS, score

if TYPE_CHECKING:
    from research.config.speed import Speed

MODEL_INPUTS = ("input_ids", "attention_mask", "labels")  # what the stock forward of every task's model takes
Batch = Mapping[str, Any]  # a collated batch: tensors, and the rows' `references` and `index`
Features = dict[str, Any]  # one example, or its encoding
Tokenizer = PreTrainedTokenizerBase
TASKS: dict[str, Task] = {}  # name -> the task; research/tasks/__init__.py registers the built-in ones


@dataclass(frozen=True)
class Rows:
    """One evaluation batch, scored: the rows the loop gathers over a split, and the batch's loss."""

    inputs: list[str]
    predictions: list[Any]
    references: list[Any]
    loss: torch.Tensor  # mean over the batch's labelled tokens (rows, for a classifier)
    count: int  # how many the mean is over


class Task(str):
    """Base of every task. Class attributes say how its model is built and scored; methods do its work."""

    SEQ2SEQ: ClassVar[Task]
    CAUSAL: ClassVar[Task]
    CLASSIFICATION: ClassVar[Task]

    auto_class: ClassVar[type]  # the transformers Auto class that builds this task's model
    padding_side: ClassVar[str] = "right"  # the tokenizer's; "left" where generation continues the prompt
    peft_task_type: ClassVar[str]  # peft's `TaskType` value
    generates: ClassVar[bool]  # scored by generated text (ROUGE, BLEU), not by a prediction per row
    # A new task head over `model.num_labels` outputs: examples carry a label field, and the head (the
    # architecture table's `heads`) trains beside every method.
    has_head: ClassVar[bool] = False
    metrics: ClassVar[tuple[str, ...]]  # names in research/metrics' registry, in the order they are logged

    @classmethod
    def parse(cls, value: str, field: str = "model.task") -> Task:
        task = TASKS.get(value) if isinstance(value, str) else None
        if task is None:
            raise ValueError(f"{field}={value!r} is not supported; allowed: {', '.join(TASKS)}")
        return task

    @property
    def value(self) -> str:
        """The name as a plain `str`."""
        return str(self)

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return registered, (str(self),)

    def encode(
        self, example: Features, prompt: str, tokenizer: Tokenizer, max_source_length: int, max_target_length: int
    ) -> Features:
        """One example's features: `input_ids`, `labels`, `truncated` (the input lost tokens), and whatever
        else this task's `collate` and `evaluate` read."""
        raise NotImplementedError

    def collate(self, features: list[Features], pad_token_id: int) -> dict[str, torch.Tensor]:
        """The batch's labels (and any other tensor this task adds beside the padded input)."""
        raise NotImplementedError

    def label_count(self, labels: torch.Tensor) -> int:
        """What the model's mean loss averages over: labelled tokens, or rows for a classifier."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, speed: Speed) -> tuple[torch.Tensor, int]:
        """The batch's mean loss and `label_count`; `speed` may choose another way to the same loss."""
        return stock_forward(model, batch).loss, self.label_count(batch["labels"])

    def evaluate(
        self, model: nn.Module, batch: Batch, tokenizer: Tokenizer, generation: Mapping[str, Any], speed: Speed
    ) -> Rows:
        """One evaluation batch: its loss, and a prediction to score against each row's reference."""
        raise NotImplementedError

    def score(self, predictions: list[Any], references: list[Any]) -> dict[str, float]:
        return score(self.metrics, predictions, references)


def stock_forward(model: nn.Module, batch: Batch) -> Any:
    """The model's own forward: logits at every position, and the loss."""
    return model(**{k: batch[k] for k in MODEL_INPUTS})


def register(task: Task) -> Task:
    """Makes `task` a value of `model.task`; its metrics must be registered already."""
    unknown = [name for name in task.metrics if name not in METRICS]
    if unknown:
        raise ValueError(f"task {task!r} lists metrics {unknown} that research/metrics does not register")
    TASKS[str(task)] = task
    return task


def registered(name: str) -> Task:
    """The registered task of this name: what a pickled or copied task comes back as."""
    return TASKS[name]
