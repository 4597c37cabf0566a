"""The three tasks a model config can declare, and what each implies. Compared by value everywhere
(`Task` is a `str`), so configs and run records keep plain strings."""

from __future__ import annotations

from enum import StrEnum


class Task(StrEnum):
    SEQ2SEQ = "seq2seq"  # encoder-decoder: the encoder reads the prompt, the decoder writes the target
    CAUSAL = "causal"  # decoder-only: prompt + target in one sequence, the prompt masked out of the loss
    CLASSIFICATION = "classification"  # encoder + a new head over `num_labels` classes

    @classmethod
    def parse(cls, value: str, field: str = "model.task") -> Task:
        try:
            return cls(value)
        except ValueError:
            raise ValueError(f"{field}={value!r} is not supported; allowed: {', '.join(cls)}") from None

    @property
    def generates(self) -> bool:
        """Scored by generating text (ROUGE, BLEU), not by a class prediction."""
        return self is not Task.CLASSIFICATION

    @property
    def peft_task_type(self) -> str:
        """peft's `TaskType` value for this task."""
        return {"seq2seq": "SEQ_2_SEQ_LM", "causal": "CAUSAL_LM", "classification": "SEQ_CLS"}[self.value]
