"""Evaluation with one pass over each batch's prompt.

Scoring a batch needs its loss (teacher-forced target) and a generated answer; done separately, the
prompt, most of each sequence, goes through the model twice. Here it goes through once:

- decoder-only: the batch is laid out as the left-padded prompt followed by the right-padded target,
  with the position ids `generate` gives a left-padded prompt; one decoder pass gives the loss at the
  target positions and the key/value cache of every position. The cache is cut back to the prompt
  minus its last token and handed to `generate`, which feeds that token and continues exactly as from
  its own prefill. Single-sequence decoding only (greedy or sampling, one answer per row): beam search
  expands the batch inside `generate`, which a cache made outside it does not follow.
- encoder-decoder: the encoder runs once; its output serves the loss and `generate`.

Not under peft prompt-learning methods, whose virtual tokens are added inside peft's own forward. Each task's
`one_pass` (research/tasks) says which of the two applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from research.data.collate import IGNORE_INDEX
from research.loop.lm_loss import LMParts, loss_at_labels

Pass = tuple[torch.Tensor, int, dict[str, Any]]  # mean loss, labelled tokens, what `generate` continues from


def shares_prefill(generation: Mapping[str, Any]) -> bool:
    """Whether these generation settings continue a decoder-only cache made outside `generate`."""
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


def prefill(parts: LMParts, batch: Mapping[str, torch.Tensor]) -> Pass:
    """Decoder-only: the loss over the target tokens, and the prompt's cache without its last position
    (nothing where the cache cannot be cut back: `generate` then starts from scratch)."""
    seq = prompt_then_target(batch)
    out = parts.decoder(
        input_ids=seq["input_ids"], attention_mask=seq["attention_mask"], position_ids=seq["position_ids"],
        use_cache=True,
    )  # fmt: skip
    loss, count = loss_at_labels(out.last_hidden_state, seq["labels"], parts.head)
    cache = out.cache
    if cache is None or not cache.is_croppable:
        return loss, count, {}
    cache.crop(-(batch["target_ids"].shape[1] + 1))
    return loss, count, {"cache": cache}


def encode_once(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, Any]]:
    """Encoder-decoder: the mean loss, and the encoder's output it used, to hand to `generate`."""
    encoded = model.get_encoder()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    loss = model(encoder_outputs=encoded, attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
    return loss, {"encoder_outputs": encoded}
