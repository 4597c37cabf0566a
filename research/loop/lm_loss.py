"""The causal-LM loss computed only where there are labels.

A decoder-only model is trained on prompt + target with the prompt masked (labels -100), yet its stock
forward applies the LM head at every position: vocabulary-wide float32 logits for each prompt token,
kept for the backward pass, and a cross-entropy over all of them in which the masked rows count for
nothing. Here the decoder runs to its hidden states, the positions that predict a label are gathered,
and only those rows go through the head and the loss: the same mean cross-entropy over the labelled
tokens, hence the same gradients, for a fraction of the head's compute and memory.

It applies where the stock logits are exactly `lm_head(decoder(...).last_hidden_state)`: the model types
whose architecture row says `plain_lm_head` (research/models/architectures.py: no logit scaling or soft-capping), not under a peft prompt-learning method, whose
virtual tokens are added inside peft's own forward, and not under a tuner with a forward of its own
(AdaLoRA adds a regulariser to the loss there). Elsewhere `lm_parts` returns None and the caller
keeps the stock path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from peft import PeftModel
from peft.tuners.tuners_utils import BaseTuner
from torch import nn

from research.data.collate import IGNORE_INDEX
from research.models.architectures import ARCHITECTURES


@dataclass(frozen=True)
class LMParts:
    decoder: nn.Module  # input ids -> final hidden states (after the last norm)
    head: nn.Module  # hidden states -> vocabulary logits (a LoRA- or modules_to_save-wrapped head too)


def lm_parts(model: nn.Module) -> LMParts | None:
    """The decoder and head of a decoder-only LM (plain, or under a peft weight method: LoRA layers sit
    inside the decoder), or None where the stock forward must be used."""
    if prompt_learning(model) or own_forward(model):
        return None
    base = model.get_base_model() if isinstance(model, PeftModel) else model
    known = ARCHITECTURES.get(getattr(base.config, "model_type", None))
    if not (known and known.plain_lm_head) or base.get_output_embeddings() is None:
        return None
    return LMParts(decoder=base.get_decoder(), head=base.get_output_embeddings())


def prompt_learning(model: nn.Module) -> bool:
    """A peft prompt-learning method (prompt or prefix tuning...): it adds virtual tokens in its own forward."""
    return isinstance(model, PeftModel) and model.peft_config[model.active_adapter].is_prompt_learning


def own_forward(model: nn.Module) -> bool:
    """A peft tuner with a forward of its own, which may change the loss (AdaLoRA adds its orthogonality
    penalty to it): running the decoder and head directly would skip that."""
    return isinstance(model, PeftModel) and type(model.base_model).forward is not BaseTuner.forward


def loss_at_labels(hidden: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy of the next-token predictions at labelled positions (position t predicts
    label t+1, as transformers' ForCausalLMLoss shifts them), and how many tokens it averages."""
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    logits = head(hidden[:, :-1][keep])
    return F.cross_entropy(logits.float(), targets[keep]), int(keep.sum())


def causal_loss(parts: LMParts, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """The loss of a prompt + target batch, as `model(**batch).loss` computes it.

    A right-padded batch needs no padding mask: under the causal mask a real token sees only the real
    tokens before it, so the hidden states at real positions (the only ones the loss reads) are the
    same without it. Without one, SDPA runs its plain causal kernel on the unexpanded grouped-query
    heads and no (batch, 1, length, length) mask is built: less memory and time."""
    mask = batch["attention_mask"]
    hidden = parts.decoder(
        input_ids=batch["input_ids"], attention_mask=None if right_padded(mask) else mask, use_cache=False
    ).last_hidden_state
    return loss_at_labels(hidden, batch["labels"], parts.head)


def right_padded(mask: torch.Tensor) -> bool:
    """Every row is real tokens, then padding only."""
    return bool((mask.cummin(dim=1).values == mask).all())
