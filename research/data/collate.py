"""Dynamic padding of a batch. The task encodes each example and collates its labels (research/tasks);
evaluation rows carry their position in the split (`index`): batches are ordered by length, and the
results are put back in the split's order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from research.tasks import Task

IGNORE_INDEX = -100  # positions the loss skips (prompt tokens, padding)


def cut_middle(ids: list[int], limit: int) -> list[int]:
    """A too-long causal prompt loses its middle: the instruction at its start and the turn that
    generation continues at its end (e.g. `Summary:` or the chat template's assistant header) stay."""
    if len(ids) <= limit:
        return ids
    head = limit // 2
    return ids[:head] + ids[len(ids) - (limit - head) :]


def pad(seqs: list[list[int]], value: int, left: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad to the longest sequence in the batch (dynamic padding); returns (ids, attention mask)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), value, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        span = slice(width - len(s), width) if left else slice(0, len(s))
        ids[i, span] = torch.tensor(s, dtype=torch.long)
        mask[i, span] = 1
    return ids, mask


class Collator:
    """The input right-padded, then what the task collates (its labels, a causal prompt for generation...)."""

    def __init__(self, pad_token_id: int, task: Task) -> None:
        self.pad_token_id, self.task = pad_token_id, task

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids, attention_mask = pad([f["input_ids"] for f in features], self.pad_token_id)
        batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        batch.update(self.task.collate(features, self.pad_token_id))
        for key in ("references", "index"):
            if key in features[0]:
                batch[key] = [f[key] for f in features]
        return batch
