"""Prompt tuning (Lester et al., 2021) through `peft.PromptTuningConfig`: `num_virtual_tokens` soft
token embeddings prepended to the input; the whole base model stays frozen.

`init`: `random`; `vocab` (embeddings of randomly sampled vocabulary tokens); `text` (the embeddings
of `init_text`, repeated to length). Text init is done here with the run's own tokenizer, so it also
works for tokenizers that peft cannot re-load by name (the offline byte tokenizer)."""

from __future__ import annotations

import torch
from peft import PeftConfig, PeftModel, PromptTuningConfig, PromptTuningInit
from torch import nn

from research.methods.base import positive
from research.methods.peft import TASK_TYPES, PeftMethod

INITS = {
    "random": PromptTuningInit.RANDOM,
    "vocab": PromptTuningInit.SAMPLE_VOCAB,
    "text": PromptTuningInit.RANDOM,
}


class PromptTuning(PeftMethod):
    def __init__(self, num_virtual_tokens: int = 20, init: str = "text", init_text: str | None = None, **kwargs):
        positive("method.num_virtual_tokens", num_virtual_tokens)
        if init not in INITS:
            raise ValueError(f"method.init={init!r} is unknown; allowed: {', '.join(INITS)}")
        if init == "text" and not init_text:
            raise ValueError("method.init=text needs method.init_text")
        self.num_virtual_tokens, self.init, self.init_text = num_virtual_tokens, init, init_text
        super().__init__(**kwargs)

    def peft_config(self, model: nn.Module) -> PeftConfig:
        return PromptTuningConfig(
            task_type=TASK_TYPES[self.task],
            num_virtual_tokens=self.num_virtual_tokens,
            prompt_tuning_init=INITS[self.init],
        )

    def inject(self, model: nn.Module) -> PeftModel:
        peft_model = super().inject(model)
        if self.init == "text":
            self._init_from_text(peft_model)
        return peft_model

    @torch.no_grad()
    def _init_from_text(self, peft_model: PeftModel) -> None:
        ids = self.tokenizer(self.init_text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ValueError(f"method.init_text={self.init_text!r} tokenizes to nothing")
        prompt = peft_model.prompt_encoder[peft_model.active_adapter].embedding.weight
        repeats = -(-prompt.shape[0] // len(ids))  # ceil: cover every virtual token (and both T5 stacks)
        ids = torch.tensor((ids * repeats)[: prompt.shape[0]], device=prompt.device)
        prompt.copy_(peft_model.get_input_embeddings()(ids).to(prompt.dtype))
