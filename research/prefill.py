"""Evaluation of a decoder-only model with one pass over the prompt per batch.

Scoring a batch needs its loss (prompt + target, teacher-forced) and a generated answer (prompt, then
new tokens). Done separately, the prompt (most of each sequence) goes through the model twice. Here the
batch is laid out as the left-padded prompt followed by the right-padded target, with the position ids
that `generate` gives a left-padded prompt; one decoder pass gives the loss at the target positions and
the key/value cache of every position. The cache is cut back to the prompt minus its last token and
handed to `generate`, which feeds that last token and continues exactly as from its own prefill.

Used only for single-sequence decoding (greedy or sampling, one answer per row): beam search would
expand the batch, which a cache made outside `generate` does not follow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import Cache

from research.data.collate import IGNORE_INDEX
from research.lm_loss import LMParts, loss_at_labels


def shares_prefill(generation: Mapping[str, Any]) -> bool:
    """Whether these generation settings continue a cache made outside `generate`."""
    single = generation.get("num_beams", 1) == 1 and generation.get("num_return_sequences", 1) == 1
    return single and generation.get("cache_implementation") is None


def prompt_then_target(batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """[left-padded prompt | right-padded target] with its mask, labels (the target tokens only) and the
    position ids `generate` derives from the mask (so cached positions match what it would compute)."""
    prompt, target, target_mask = batch["prompt_ids"], batch["target_ids"], batch["target_mask"]
    mask = torch.cat([batch["prompt_mask"], target_mask], dim=1)
    labels = torch.cat([torch.full_like(prompt, IGNORE_INDEX), target.masked_fill(target_mask == 0, IGNORE_INDEX)], 1)
    positions = (mask.cumsum(-1) - 1).masked_fill(mask == 0, 0)
    return {"input_ids": torch.cat([prompt, target], dim=1), "attention_mask": mask, "labels": labels,
            "position_ids": positions}  # fmt: skip


def prefill(parts: LMParts, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int, Cache | None]:
    """The batch's mean loss over its target tokens, how many there are, and the prompt's cache without
    its last position (None where the cache cannot be cut back: the caller then generates from scratch)."""
    seq = prompt_then_target(batch)
    out = parts.decoder(
        input_ids=seq["input_ids"], attention_mask=seq["attention_mask"], position_ids=seq["position_ids"],
        use_cache=True,
    )  # fmt: skip
    loss, count = loss_at_labels(out.last_hidden_state, seq["labels"], parts.head)
    cache = out.cache
    if cache is None or not cache.is_croppable:
        return loss, count, None
    cache.crop(-(batch["target_ids"].shape[1] + 1))
    return loss, count, cache
