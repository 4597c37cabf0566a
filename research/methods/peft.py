"""Any peft tuner from YAML: `peft_config` is a partial peft config (`_target_: peft.IA3Config`,
`_partial_: true`), completed here with the task type. IA3 and prefix tuning ship this way with no
Python of their own; LoRA and prompt tuning subclass this to add their own checks and defaults."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from peft import PeftConfig, PeftModel, TaskType, get_peft_model
from torch import nn

from research.methods.base import FineTuneModule, head_modules

TASK_TYPES = {
    "seq2seq": TaskType.SEQ_2_SEQ_LM,
    "causal": TaskType.CAUSAL_LM,
    "classification": TaskType.SEQ_CLS,
}


class PeftMethod(FineTuneModule):
    def __init__(self, peft_config: Callable[..., PeftConfig] | None = None, **kwargs) -> None:
        self.make_peft_config = peft_config
        super().__init__(**kwargs)

    def peft_config(self, model: nn.Module) -> PeftConfig:
        if self.make_peft_config is None:
            raise ValueError("method.peft_config is missing: give a peft config `_target_` with `_partial_: true`")
        return self.make_peft_config(task_type=TASK_TYPES[self.task])

    def inject(self, model: nn.Module) -> PeftModel:
        config = self.peft_config(model)
        check_target_modules(model, getattr(config, "target_modules", None))
        if self.task == "classification":  # peft adds classifier/score itself, not the pooler
            heads = [name.split(".")[-1] for name in head_modules(model)]
            config.modules_to_save = sorted(set(config.modules_to_save or []) | set(heads))
        return get_peft_model(model, config)

    def save_weights(self, directory: Path) -> Path:
        self.model.save_pretrained(directory)  # adapter only, safetensors, plain-peft loadable
        return directory

    @contextmanager
    def base_model(self) -> Iterator[nn.Module]:
        with self.model.disable_adapter():
            yield self.model.get_base_model()


def check_target_modules(model: nn.Module, targets: list[str] | str | None) -> None:
    """Fail before injection, listing what exists: peft's own error names neither."""
    if targets is None or isinstance(targets, str):  # None: peft's per-architecture default; str: a regex
        return
    available = sorted({name.rsplit(".", 1)[-1] for name, m in model.named_modules() if _is_linear(m)})
    missing = [t for t in targets if t not in available]
    if missing:
        hints = {t: difflib.get_close_matches(t, available, n=3) for t in missing}
        raise ValueError(
            f"method.target_modules: {missing} not in the model; close matches {hints}; "
            f"available linear modules: {available}"
        )


def _is_linear(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or type(module).__name__ in ("Conv1D", "Linear4bit", "Linear8bitLt")
