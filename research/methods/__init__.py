"""Fine-tuning strategies: one LightningModule each, sharing the loop in `base.py`."""

from research.methods.adapter import Adapter
from research.methods.base import FineTuneModule, count_parameters
from research.methods.full import Full
from research.methods.lora import LoRA
from research.methods.peft import PeftMethod
from research.methods.prompt_tuning import PromptTuning
from research.methods.selective import Selective

__all__ = [
    "Adapter",
    "FineTuneModule",
    "Full",
    "LoRA",
    "PeftMethod",
    "PromptTuning",
    "Selective",
    "count_parameters",
]
