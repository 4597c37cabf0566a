"""After training: load a run's saved adapter into a fresh base, merge it into the base weights, and
export the merged model so that plain transformers (no peft) serves it. Small functions on purpose:
tests and `research.infer` compose them."""

from __future__ import annotations

from pathlib import Path

from peft import PeftModel
from transformers import PreTrainedModel


def load_adapter(base: PreTrainedModel, weights_dir: Path, adapter_name: str = "default") -> PeftModel:
    """A peft run's `weights/` (adapter_config.json + safetensors) onto a fresh base, frozen, eval mode."""
    return PeftModel.from_pretrained(base, str(weights_dir), adapter_name=adapter_name, is_trainable=False).eval()


def merge(model: PeftModel) -> PreTrainedModel:
    """Fold mergeable adapters (LoRA, IA3) into the base weights: no adapter cost at inference."""
    return model.merge_and_unload()


def export_merged(model: PeftModel, directory: Path) -> Path:
    """`save_pretrained` of the merged model: a plain transformers checkpoint (safetensors)."""
    merge(model).save_pretrained(directory)
    return directory
