"""QLoRA (Dettmers et al., 2023): the frozen base in 4-bit (NF4/FP4, optionally double-quantized)
through `transformers.BitsAndBytesConfig`, `peft.prepare_model_for_kbit_training`, then LoRA.

The base must be quantized when it is loaded, so the strategy exposes `load_kwargs(method_cfg)`,
read by `research.train.build` before the model exists. Models built from a config (random weights)
never pass through `from_pretrained`; `inject` then quantizes them by a save / `from_pretrained`
round trip through a temporary directory: the same loader path as a real checkpoint, no private API.
"""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Mapping
from typing import Any

import torch
from peft import PeftModel, prepare_model_for_kbit_training
from torch import nn
from transformers import BitsAndBytesConfig, PreTrainedModel

from research.methods.lora import LoRA
from research.models.loading import AUTO_CLASSES, DTYPES

QUANT_TYPES = ("nf4", "fp4")


def quantization_config(
    quant_type: str = "nf4", double_quant: bool = True, compute_dtype: str = "float32"
) -> BitsAndBytesConfig:
    """Validated here so that a typo or a missing bitsandbytes fails before any weight loads."""
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("method.quant_type: QLoRA needs bitsandbytes (pip install bitsandbytes)")
    if quant_type not in QUANT_TYPES:
        raise ValueError(f"method.quant_type={quant_type!r}; allowed: {', '.join(QUANT_TYPES)}")
    if compute_dtype not in DTYPES:
        raise ValueError(f"method.compute_dtype={compute_dtype!r}; allowed: {', '.join(DTYPES)}")
    if compute_dtype == "float16" and not torch.cuda.is_available():
        raise ValueError("method.compute_dtype=float16 needs a GPU; on CPU use float32 or bfloat16")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=quant_type,
        bnb_4bit_use_double_quant=double_quant,
        bnb_4bit_compute_dtype=DTYPES[compute_dtype],
    )


def is_4bit(model: nn.Module) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False))


def quantize(model: PreTrainedModel, config: BitsAndBytesConfig) -> PreTrainedModel:
    """Re-load an in-memory model through `from_pretrained` with `quantization_config`."""
    auto = next(a for a in AUTO_CLASSES.values() if type(model) in a._model_mapping.values())
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        return auto.from_pretrained(tmp, quantization_config=config, dtype=config.bnb_4bit_compute_dtype)


def keep_trainable_layout(model: nn.Module) -> None:
    """bitsandbytes 0.50 on AVX512-BF16 CPUs repacks a 4-bit weight in place at its first eval-mode
    forward, into a layout whose kernel has no autograd: a later training step (after the zero-shot or
    validation pass) then silently gets no gradient through the base. Keep the trainable layout."""
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):  # bnb Linear4bit (bitsandbytes is imported lazily)
            module.support_avx512bf16_for_cpu = False


class QLoRA(LoRA):
    def __init__(
        self,
        quant_type: str = "nf4",
        double_quant: bool = True,
        compute_dtype: str = "float32",
        gradient_checkpointing: bool = False,
        **kwargs,
    ) -> None:
        self.bnb_config = quantization_config(quant_type, double_quant, compute_dtype)
        self.gradient_checkpointing = gradient_checkpointing
        super().__init__(**kwargs)

    @staticmethod
    def load_kwargs(method_cfg: Mapping[str, Any]) -> dict[str, Any]:
        keys = ("quant_type", "double_quant", "compute_dtype")
        return {"quantization_config": quantization_config(**{k: method_cfg[k] for k in keys if k in method_cfg})}

    def inject(self, model: nn.Module) -> PeftModel:
        # model.gradient_checkpointing was applied to the float model, which `quantize` replaces: carry it over.
        checkpointing = self.gradient_checkpointing or model.is_activation_checkpointing
        if not is_4bit(model):
            model = quantize(model, self.bnb_config)
        keep_trainable_layout(model)
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=checkpointing,
            gradient_checkpointing_kwargs={
                "use_reentrant": False
            },  # as the fast path: the frozen base passes gradients
        )
        return super().inject(model)
