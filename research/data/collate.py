"""Tokenization of one example per task, and dynamic padding of a batch.

seq2seq: encoder input = prompt, labels = target.  causal: input = prompt + target + eos with the
prompt masked out of the loss (labels -100), plus the prompt alone (left-padded) for generation and the
target alone (right-padded), which evaluation appends to the left-padded prompt so that one pass gives
both the loss and the prompt's cache for generation (research/prefill.py).
classification: input = text, labels = class index.
Evaluation rows carry their position in the split (`index`): batches are ordered by length, and the
results are put back in the split's order.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100  # positions the loss skips (prompt tokens, padding)


def encode(
    example: dict[str, Any],
    prompt: str,
    tokenizer: PreTrainedTokenizerBase,
    task: str,
    max_source_length: int,
    max_target_length: int,
) -> dict[str, Any]:
    if task == "classification":
        ids = tokenizer(prompt, truncation=True, max_length=max_source_length)["input_ids"]
        return {"input_ids": ids, "labels": example["label"], "truncated": len(ids) >= max_source_length}
    if task == "seq2seq":
        ids = tokenizer(prompt, truncation=True, max_length=max_source_length)["input_ids"]
        labels = tokenizer(text_target=example["target"], truncation=True, max_length=max_target_length)["input_ids"]
        return {"input_ids": ids, "labels": labels, "truncated": len(ids) >= max_source_length}
    full = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    prompt_ids = cut_middle(full, max_source_length)
    # A space joins a plain prompt to its target; a chat prompt already ends the turn with a newline.
    sep = "" if prompt[-1:].isspace() else " "
    target_ids = tokenizer(sep + example["target"], add_special_tokens=False)["input_ids"][: max_target_length - 1]
    target_ids = target_ids + [tokenizer.eos_token_id]
    return {
        "input_ids": prompt_ids + target_ids,
        "labels": [IGNORE_INDEX] * len(prompt_ids) + target_ids,
        "prompt_ids": prompt_ids,
        "truncated": len(full) > max_source_length,
    }


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
    """Training sequences are right-padded; causal prompts for generation are left-padded so that
    every prompt ends where generation starts."""

    def __init__(self, pad_token_id: int, task: str) -> None:
        self.pad_token_id, self.task = pad_token_id, task

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        input_ids, attention_mask = pad([f["input_ids"] for f in features], self.pad_token_id)
        batch: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if self.task == "classification":
            batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
        else:
            batch["labels"] = pad([f["labels"] for f in features], IGNORE_INDEX)[0]
        if "prompt_ids" in features[0]:
            batch["prompt_ids"], batch["prompt_mask"] = pad(
                [f["prompt_ids"] for f in features], self.pad_token_id, left=True
            )
            targets = [f["input_ids"][len(f["prompt_ids"]) :] for f in features]
            batch["target_ids"], batch["target_mask"] = pad(targets, self.pad_token_id)
        for key in ("references", "index"):
            if key in features[0]:
                batch[key] = [f[key] for f in features]
        return batch
