"""Generation behind a soft prompt (peft prompt tuning and P-tuning) at the positions training gave it.

peft prepends the virtual tokens to the batch as it comes. In training that is prompt + target padded on
the right: the virtual tokens sit at positions 0..n-1 and every row's text right after them. At generation
it is the prompt padded on the left, and peft drops the position ids `generate` derives from the attention
mask (they do not cover the virtual tokens), so the model counts positions through the padding: a row with
k pad tokens reads its text k positions further from the virtual tokens than it was trained with (RoPE
attends by relative position). An untrained prompt, embeddings of real words, is read much the same; a
trained one is not, and the answers of padded rows degenerated (issue 25: SmolLM2-135M on DialogSum fell
far below zero-shot while its teacher-forced test loss, computed in the training layout, had improved).
Here each row is laid out as [padding | virtual tokens | text], and the base model's `generate` takes the
embeddings with a mask that covers the virtual tokens, from which it derives the training positions
(virtual tokens 0..n-1, the text from n), whatever the padding.
"""

from __future__ import annotations

from typing import Any

import torch
from peft import PeftModel
from torch import nn

INPUT_PROMPTS = ("PROMPT_TUNING", "P_TUNING")  # peft types whose virtual tokens are input embeddings


def has_input_prompt(model: nn.Module) -> bool:
    """A peft model whose virtual tokens are prepended to the input embeddings (not prefix tuning's cache)."""
    return isinstance(model, PeftModel) and model.peft_config[model.active_adapter].peft_type.value in INPUT_PROMPTS


def behind_padding(
    virtual: torch.Tensor, embeds: torch.Tensor, mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row as [padding | virtual tokens | text] and its mask: the virtual tokens (batch, n, hidden)
    moved past the left padding of `embeds` (batch, length, hidden), order otherwise kept."""
    full_mask = torch.cat([mask.new_ones(virtual.shape[:2]), mask], dim=1)
    order = full_mask.argsort(dim=1, stable=True)  # the zeros (padding) first, the rest in its order
    full = torch.cat([virtual.to(embeds.dtype), embeds], dim=1)
    return full.gather(1, order.unsqueeze(-1).expand_as(full)), full_mask.gather(1, order)


@torch.no_grad()
def generate_behind_prompt(model: PeftModel, ids: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """The answers (generated tokens only) to a left-padded batch of prompts, read after the soft prompt
    at the positions training gave it."""
    virtual = model.get_prompt(batch_size=ids.shape[0])
    embeds, full_mask = behind_padding(virtual, model.get_input_embeddings()(ids), mask)
    return model.get_base_model().generate(inputs_embeds=embeds, attention_mask=full_mask, **kwargs)
