"""LoRA (Hu et al., 2021) through `peft.LoraConfig`: W x + (alpha / rank) B A x, with B = 0 at start so
the model begins identical to the base. Trainable count per target Linear(d_in, d_out): rank*(d_in+d_out)."""

from __future__ import annotations

from peft import LoraConfig, PeftConfig
from torch import nn

from research.methods.base import positive
from research.methods.peft import TASK_TYPES, PeftMethod

# The attention projections the LoRA paper adapts (query and value), per architecture.
DEFAULT_TARGETS = {
    "t5": ["q", "v"],
    "mt5": ["q", "v"],
    "llama": ["q_proj", "v_proj"],
    "mistral": ["q_proj", "v_proj"],
    "qwen2": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
}


class LoRA(PeftMethod):
    def __init__(
        self,
        rank: int = 8,
        alpha: float = 16,
        dropout: float = 0.05,
        target_modules: list[str] | None = None,
        bias: str = "none",
        **kwargs,
    ) -> None:
        positive("method.rank", rank)
        positive("method.alpha", alpha)
        if not 0 <= dropout < 1:
            raise ValueError(f"method.dropout={dropout} must be in [0, 1)")
        if bias not in ("none", "all", "lora_only"):
            raise ValueError(f"method.bias={bias!r}; allowed: none, all, lora_only")
        self.rank, self.alpha, self.dropout, self.bias = rank, alpha, dropout, bias
        self.target_modules = list(target_modules) if target_modules else None
        super().__init__(**kwargs)

    def peft_config(self, model: nn.Module) -> PeftConfig:
        model_type = model.config.model_type
        targets = self.target_modules or DEFAULT_TARGETS.get(model_type)
        if targets is None:
            raise ValueError(
                f"no default LoRA target modules for model_type={model_type!r}: set method.target_modules "
                f"(defaults exist for {', '.join(DEFAULT_TARGETS)})"
            )
        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=targets,
            bias=self.bias,
            task_type=TASK_TYPES[self.task],
        )
