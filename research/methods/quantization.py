"""A 4-bit base (QLoRA, Dettmers et al., 2023) for any peft method: NF4/FP4, optionally double-quantized,
through `transformers.BitsAndBytesConfig`. `conf/method/qlora.yaml` is LoRA plus a `quantization:` node.

The base is quantized when it loads (`from_pretrained(quantization_config=...)`). Models built from a
config (random weights) and GGUF files (transformers refuses a quantization config next to `gguf_file`)
never pass through that path: `quantize` re-loads them through a save / `from_pretrained` round trip,
the same loader path as a real checkpoint, no private API."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import torch
from torch import nn
from transformers import BitsAndBytesConfig, PreTrainedModel

from research.config.extras import require
from research.models.loading import DTYPES
from research.tasks import TASKS

QUANT_TYPES = ("nf4", "fp4")


@dataclass(frozen=True)
class Quantization:
    """Mirror of the `method.quantization` node; validated when the method is built."""

    quant_type: str = "nf4"
    double_quant: bool = True  # also quantize the per-block scales
    compute_dtype: str = "float32"

    def __post_init__(self) -> None:
        require("qlora", "method.quantization (a 4-bit base)")
        if self.quant_type not in QUANT_TYPES:
            raise ValueError(f"method.quantization.quant_type={self.quant_type!r}; allowed: {', '.join(QUANT_TYPES)}")
        if self.compute_dtype not in DTYPES:
            raise ValueError(f"method.quantization.compute_dtype={self.compute_dtype!r}; allowed: {', '.join(DTYPES)}")
        if self.compute_dtype == "float16" and not torch.cuda.is_available():
            raise ValueError("method.quantization.compute_dtype=float16 needs a GPU; on CPU use float32 or bfloat16")

    def bnb_config(self) -> BitsAndBytesConfig:
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type=self.quant_type,
            bnb_4bit_use_double_quant=self.double_quant,
            bnb_4bit_compute_dtype=DTYPES[self.compute_dtype],
        )


def is_4bit(model: nn.Module) -> bool:
    return bool(getattr(model, "is_loaded_in_4bit", False))


def quantize(model: PreTrainedModel, config: BitsAndBytesConfig) -> PreTrainedModel:
    """Re-load an in-memory model through `from_pretrained` with `quantization_config`."""
    auto = next(t.auto_class for t in TASKS.values() if type(model) in t.auto_class._model_mapping.values())
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
