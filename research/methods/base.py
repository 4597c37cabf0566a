"""The method contract. A method is a small object built from `conf/method/<name>.yaml` (so its fields
are checked before any model loads). The training loop (`research/loop/module.py`) is the same for every
method; a method decides only what is injected into the base model, what trains, and owns the whole
life of its weights: save, load onto a fresh base, merge (or refuse, saying why), export.

Contract, in the order a run uses it:
- `load_kwargs()`        extra `from_pretrained` arguments for the base (QLoRA: its 4-bit config)
- `inject(model, ctx)`   add what is trained, freeze the rest; returns the model the loop trains
- `base_model(model)`    context: the model as it was before injection (zero-shot pass, forgetting)
- `on_optimizer_step(model, step)` per-step hook after each optimizer step (AdaLoRA reallocates ranks)
- `save(model, dir)`     the trained weights, in a format `load` reads back
- `load(base, dir, ctx)` a fresh base + saved weights -> the trained model, frozen, eval mode
- `load_beside(model, dir, name, ctx)` another run's weights beside those already on `model`, as a named
                         adapter (infer serves several runs on one base); methods that rewrite the base refuse
- `merge(model)`         a plain transformers model with the weights folded in, or `MergeRefused`
- `export(model, tokenizer, dir)` merged model + tokenizer, loadable without this package

A task head (a classifier's new layer over its classes: `ctx.heads`) trains beside every method, and no
method has to unfreeze it: when `inject` returns the base itself, changed in place (full, selective, adapter),
the pipeline makes the heads trainable afterwards (`train_heads`); a method that wraps the base instead
trains `ctx.heads` in its wrapper (peft: `modules_to_save`). Hence a method's `save` must keep every
trainable tensor, not only its own (the default does), and `load` must put them back. The head trains at
`optimizer.head_lr` when it is set, else at the method's `lr` (the loop's optimizer: research/loop/module.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from research.models.architectures import head_modules
from research.tasks import Task

TRAINABLE_FILE = "trainable.safetensors"


class MergeRefused(ValueError):
    """This method's weights cannot be folded into the base; the message says why."""


@dataclass(frozen=True)
class Context:
    """What a method may need to know about the run when it injects or loads."""

    task: Task
    tokenizer: PreTrainedTokenizerBase
    total_steps: int | None = None  # optimizer steps of the whole run, when known (AdaLoRA's schedule)
    heads: tuple[str, ...] = ()  # the base's task-head modules (`task_heads`), which train beside the method


def count_parameters(model: nn.Module) -> dict[str, float]:
    """Unique parameters; 4-bit packed weights count as 2 parameters per stored byte."""
    trainable = total = 0
    for p in model.parameters():
        n = p.numel() * 2 if p.dtype == torch.uint8 and hasattr(p, "quant_state") else p.numel()
        total += n
        trainable += n if p.requires_grad else 0
    return {"trainable": trainable, "total": total, "trainable_pct": 100.0 * trainable / max(total, 1)}


def task_heads(model: nn.Module, task: Task) -> tuple[str, ...]:
    """The modules of the base's task head (the architecture table's `heads`), for a task that has one."""
    if not task.has_head:
        return ()
    return tuple(head_modules([n for n, _ in model.named_modules()], model.config.model_type))


def in_head(name: str, heads: tuple[str, ...]) -> bool:
    """Whether the parameter `name` belongs to one of the task-head modules `heads`: the head itself (in place)
    or peft's copy of it (`base_model.model.classifier.modules_to_save.default.weight`)."""
    return any(f".{head}." in f".{name}" for head in heads)


def head_counts(model: nn.Module, heads: tuple[str, ...]) -> dict[str, int]:
    """Trainable parameters of the task head and of everything else, so that a methods table can tell the
    method from the new head that trains beside it (on a small classifier the head is most of a PEFT arm)."""
    trainable = [(n, p.numel()) for n, p in model.named_parameters() if p.requires_grad]
    head = sum(size for name, size in trainable if in_head(name, heads))
    return {"head": head, "trainable_without_head": sum(size for _, size in trainable) - head}


def train_heads(base: nn.Module, model: nn.Module, heads: tuple[str, ...]) -> None:
    """The task head is new for the task, so it trains whatever the method: made trainable here when the
    method changed `base` in place (`model`, what `inject` returned, is `base`). A wrapping method trains
    them itself: under peft, `base` now holds each head as the frozen `original_module` of peft's
    `modules_to_save` copy, which must stay frozen."""
    if model is base:
        for name in heads:
            model.get_submodule(name).requires_grad_(True)


def trainable_tensors(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}


def load_tensors(model: nn.Module, file: Path, required: str | None = None) -> nn.Module:
    """Saved tensors into `model` by name; every saved tensor must find its parameter, and every
    parameter whose name contains `required` (the method's own, e.g. `.adapter.`) must be saved."""
    if not file.is_file():
        raise FileNotFoundError(f"{file} does not exist: was this run's weights/ written by this method?")
    state = load_file(str(file))
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if required and required in k]
    if result.unexpected_keys or missing:
        raise ValueError(
            f"{file} does not fit this model: tensors it lacks {sorted(result.unexpected_keys)[:5]}, "
            f"tensors missing from the file {missing[:5]}"
        )
    return model


class Method:
    """Base of every method. `name` is the conf/method file name; `lr` the method's own learning rate."""

    has_soft_prompt = False  # offered the soft-prompt neighbours analysis (conf/callbacks/soft_prompt.yaml)
    needs_head = False  # trains nothing but the task head: a task without one is refused before the model loads

    def __init__(self, name: str, lr: float) -> None:
        self.name, self.lr = name, lr  # lr is checked with the config (research/methods/fields.py)

    def load_kwargs(self) -> dict[str, Any]:
        return {}

    def check_base(self, skeleton: nn.Module, task: Task) -> None:
        """Checks against the base's module tree (`skeleton`: its modules, no weights), run before the weights
        load, so that naming a module the model lacks fails in seconds. None by default."""

    def inject(self, model: PreTrainedModel, ctx: Context) -> nn.Module:
        raise NotImplementedError

    @contextmanager
    def base_model(self, model: nn.Module) -> Iterator[nn.Module]:
        """Methods that change weights in place (full, selective) have no separate base: before the
        first step the model *is* the base, which is when the zero-shot pass and forgetting ask."""
        yield model

    def on_optimizer_step(self, model: nn.Module, step: int) -> None:
        """Called after each optimizer step with the global step; most methods need nothing."""

    def save(self, model: nn.Module, directory: Path) -> Path:
        """Default: the trainable tensors only."""
        directory.mkdir(parents=True, exist_ok=True)
        save_file(trainable_tensors(model), str(directory / TRAINABLE_FILE))
        return directory

    def load(self, base: PreTrainedModel, directory: Path, ctx: Context) -> nn.Module:
        """Default: the saved tensors over a fresh base's own (in-place methods)."""
        return load_tensors(base, directory / TRAINABLE_FILE).requires_grad_(False).eval()

    def load_beside(self, model: nn.Module, directory: Path, name: str, ctx: Context) -> nn.Module:
        """Default: weights that replace the base's own cannot share a base with another run's."""
        raise ValueError(
            f"method {self.name!r} changes the base's own weights: only peft adapters share a base; "
            "run infer once per run"
        )

    def merge(self, model: nn.Module) -> PreTrainedModel:
        """Default: in-place methods changed the base's own weights; there is nothing to fold."""
        return model

    def export(self, model: nn.Module, tokenizer: PreTrainedTokenizerBase, directory: Path) -> Path:
        """The merged model and its tokenizer as a plain transformers checkpoint."""
        merged = self.merge(model)
        merged.save_pretrained(directory)
        tokenizer.save_pretrained(directory)
        return directory

    def describe(self, model: nn.Module) -> dict[str, Any]:
        """What was actually injected, for run.json (e.g. the target modules peft resolved)."""
        return {}
