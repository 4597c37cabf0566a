"""After training: load a run's saved adapter into a fresh base, merge it into the base weights, and
export the merged model so that plain transformers (no peft) serves it. Small functions on purpose:
tests and `research.infer` compose them.

- peft methods (LoRA, QLoRA, IA3, prompt tuning, ...): peft's format, `PeftModel.from_pretrained`.
- bottleneck adapters (`method=adapter`, our own): `research.methods.adapter.load_adapters`.
- QLoRA: the base must be quantized as in the run (`research.methods.qlora.quantize`); merging
  de-quantizes it first (below)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from peft import PeftModel
from torch import nn
from transformers import PreTrainedModel

from research.methods.adapter import ADAPTER_FILE, load_adapters
from research.methods.qlora import is_4bit, keep_trainable_layout


def load_adapter(base: PreTrainedModel, weights_dir: Path, adapter_name: str = "default") -> nn.Module:
    """A run's `weights/` onto a fresh base, frozen, eval mode: a peft adapter (adapter_config.json +
    safetensors) as a `PeftModel`, or our bottleneck adapters attached to `base` itself."""
    if (Path(weights_dir) / ADAPTER_FILE).exists():
        return load_adapters(base, Path(weights_dir))
    if is_4bit(base):
        keep_trainable_layout(base)  # the kernels the run trained and was scored with: identical outputs
    return PeftModel.from_pretrained(base, str(weights_dir), adapter_name=adapter_name, is_trainable=False).eval()


def merge(model: nn.Module) -> PreTrainedModel:
    """Fold a mergeable adapter (LoRA, IA3) into the base weights: no adapter cost at inference.
    Consumes `model`, like peft's `merge_and_unload`.

    On a 4-bit base (QLoRA), peft would re-quantize the merged weights to 4 bits, which moves the logits
    (max 0.14 on the tiny test Llama, against an adapter effect of 1.1). Instead the base is de-quantized
    to its compute dtype first: the merged model is a full-precision model whose outputs equal the
    QLoRA model's (W_dequantized + BA is exactly what its 4-bit layers compute)."""
    if not isinstance(model, PeftModel):
        raise ValueError(
            f"merge: {type(model).__name__} holds no peft adapter; bottleneck adapters (method=adapter) put a "
            "nonlinear layer after each sublayer, which no weight matrix can absorb: serve them unmerged"
        )
    config = model.peft_config[model.active_adapter]
    if config.is_prompt_learning:
        raise ValueError(
            f"merge: method {config.peft_type.value.lower()} learns virtual tokens, not weights: "
            "there is nothing to fold into the base; serve it unmerged with peft"
        )
    if is_4bit(model.get_base_model()):
        return _merge_dequantized(model)
    return model.merge_and_unload()


def _merge_dequantized(model: PeftModel) -> PreTrainedModel:
    """Round trip through a temporary directory: save the active adapter, strip it, de-quantize the base
    with transformers' `dequantize`, re-load the adapter onto the full-precision base and merge there."""
    name = model.active_adapter
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, selected_adapters=[name])
        saved = Path(tmp) if name == "default" else Path(tmp) / name  # peft's layout for named adapters
        base = model.unload().dequantize()
        return PeftModel.from_pretrained(base, str(saved)).merge_and_unload()


def export_merged(model: PeftModel, directory: Path) -> Path:
    """`save_pretrained` of the merged model: a plain transformers checkpoint (safetensors)."""
    merge(model).save_pretrained(directory)
    return directory
