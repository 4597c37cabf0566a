"""Every config field's rule is checked here, once, on the composed config before anything heavy is imported
or loaded: a wrong value fails in a second, naming the field and what is allowed. The framework's own fields
are in the table below; a built-in method's numeric fields are declared by the methods layer
(research/methods/fields.py, torch-free) and checked here with the rest. Choices that only make sense
together with a method's other fields (an adapter's variant, a selective mode) are checked by the method
when it is built, still before the model loads.

`*` in a name matches one key, so `method.peft_config.*dropout` covers every peft tuner's dropout fields."""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect

from omegaconf import DictConfig, OmegaConf

from research.config.fields import PROBABILITY, Field, at_least, flatten, positive
from research.config.speed import Speed
from research.methods.fields import method_fields

CHOICES = {  # top-level choices
    "split": ("train", "validation", "test"),
    "overwrite": (False, True),
    "progress_bar": ("tqdm", "rich"),  # research/views/progress.py BARS
}
SECTIONS = ("seed", "method", "optimizer", "scheduler", "trainer", "generation", "data")

FIELDS: dict[str, Field] = {
    "seed": at_least(0),
    "optimizer.weight_decay": at_least(0, "number"),
    "optimizer.eps": positive(),
    "optimizer.head_lr": positive(nullable=True),
    "optimizer.betas.*": PROBABILITY,
    "scheduler.warmup_ratio": PROBABILITY,
    "scheduler.warmup_steps": at_least(0, nullable=True),
    "trainer.max_epochs": at_least(-1, nullable=True),
    "trainer.max_steps": at_least(-1),
    "trainer.accumulate_grad_batches": positive("int"),
    "trainer.gradient_clip_val": at_least(0, "number", nullable=True),
    "trainer.log_every_n_steps": positive("int"),
    "trainer.check_val_every_n_epoch": positive("int", nullable=True),
    "generation.max_new_tokens": positive("int"),
    "generation.num_beams": positive("int"),
    "data.batch_size": positive("int"),
    "data.eval_batch_size": positive("int"),
    "data.max_source_length": positive("int"),
    "data.max_target_length": positive("int"),
    "data.num_examples": at_least(0),
    "data.num_workers": at_least(0),
    "data.train_limit": positive("int", nullable=True),
    "data.eval_limit": positive("int", nullable=True),
    "data.test_limit": positive("int", nullable=True),
}
MISSING = "???"  # omegaconf's mark of a value the config requires and does not set
REQUIRED = {  # what a required field takes, said when it is not set
    "data.path": "a local data file (it serves every split) or a folder with data.files={train: ..}; "
    "data.path=null reads data.hub_id instead",
}


def check_config(cfg: DictConfig) -> None:
    """Every problem at once, one line each; raises ValueError when there is any."""
    sections = {k: cfg[k] for k in SECTIONS if k in cfg}  # paths/hydra interpolate Hydra's runtime: not ours
    values = flatten(
        OmegaConf.to_container(OmegaConf.create(sections), resolve=True, throw_on_missing=False), lists=True
    )
    rules = FIELDS | {f"method.{k}": v for k, v in method_fields(cfg.get("method"), values).items()}
    problems = []
    for name, value in values.items():
        if value == MISSING:
            problems.append(f"{name} is required and not set; it takes {REQUIRED.get(name, 'a value')}")
            continue
        field = next((f for pattern, f in rules.items() if fnmatch.fnmatchcase(name, pattern)), None)
        if field and not field.accepts(value):
            problems.append(f"{name}={value!r} must be {field.allowed()}")
    for name, allowed in CHOICES.items():
        if name in cfg and cfg[name] not in allowed:
            shown = ", ".join(str(a).lower() if isinstance(a, bool) else a for a in allowed)
            problems.append(f"{name}={cfg[name]!r} is unknown; allowed: {shown}")
    problems += run_length_problems(cfg)
    try:
        Speed.from_config(cfg.get("speed"))
    except ValueError as err:
        problems.append(str(err))
    if problems:
        raise ValueError("; ".join(problems))


def run_length_problems(cfg: DictConfig) -> list[str]:
    """A run that trains must take at least one step, and end: a "completed" run that never trained is a
    lie in every comparison."""
    if not cfg.get("train", True) or "trainer" not in cfg:
        return []
    epochs, steps = cfg.trainer.get("max_epochs"), cfg.trainer.get("max_steps", -1)
    if steps == 0 or (epochs == 0 and steps in (-1, None)):
        return [f"trainer.max_epochs={epochs}, trainer.max_steps={steps} train nothing; set one > 0 (or train=false)"]
    if epochs in (-1, None) and steps in (-1, None):
        return ["trainer.max_epochs=-1 with trainer.max_steps=-1 never ends; set one > 0"]
    warmup = cfg.get("scheduler", {}).get("warmup_steps")
    if isinstance(steps, int) and steps > 0 and isinstance(warmup, int) and warmup >= steps:
        return [f"scheduler.warmup_steps={warmup} is not shorter than the run (trainer.max_steps={steps})"]
    return []


def check_arguments(node: DictConfig, field: str) -> None:
    """A key that the class of a `_target_` node does not take fails before the model loads, not when the
    object is built after it: Hydra refuses a misspelled key of the config, but one added with `+` passes.
    Called by the pipeline's build, where the target's library is imported anyway."""
    module, _, name = str(node._target_).rpartition(".")
    try:
        target = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError) as err:
        raise ValueError(f"{field}._target_={node._target_!r} cannot be imported ({err})") from None
    params = inspect.signature(target).parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return  # takes any keyword: the target checks its own
    names = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    problems = []
    for key in (str(k) for k in node if not str(k).startswith("_") and k not in params):
        close = difflib.get_close_matches(key, names, n=2)
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        problems.append(f"{field}.{key} is not an argument of {node._target_}{hint}")
    if problems:
        raise ValueError(f"{'; '.join(problems)}; it takes: {', '.join(names)}")


def check_generation(node: DictConfig) -> None:
    """A key of `generation` that transformers' generate does not know fails before the model loads, naming
    the closest: one added with `+` (`+generation.num_beamz=2`) would otherwise reach generate after the
    model loaded and training ran. The keys are GenerationConfig's fields and generate's own arguments."""
    from transformers import GenerationConfig, GenerationMixin  # imported by the pipeline anyway

    known = {k for k in vars(GenerationConfig()) if not k.startswith("_")}
    known |= set(inspect.signature(GenerationMixin.generate).parameters) - {"self", "inputs", "kwargs"}
    problems = []
    for key in (str(k) for k in node):
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=2)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            problems.append(f"generation.{key} is not a generation option of transformers{hint}")
    if problems:
        raise ValueError(f"{'; '.join(problems)}; the options are transformers.GenerationConfig's fields")
