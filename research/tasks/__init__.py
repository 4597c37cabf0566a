"""The tasks a model config can declare (`model.task`), each an object that owns what differs between them:
how its model is built, how an example is encoded and a batch collated, its loss, how an evaluation batch is
predicted and scored (research/tasks/base.py says what a task provides). A new task is one module here and
one `register` line below; `Task.parse(name)` finds it."""

from research.tasks.base import TASKS, Rows, Task, register
from research.tasks.causal import Causal
from research.tasks.classification import Classification
from research.tasks.seq2seq import Seq2Seq

Task.SEQ2SEQ = register(Seq2Seq("seq2seq"))
Task.CAUSAL = register(Causal("causal"))
Task.CLASSIFICATION = register(Classification("classification"))

__all__ = ["TASKS", "Rows", "Task", "register"]
