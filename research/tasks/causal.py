"""Decoder-only generation: prompt + target + eos in one sequence, the prompt masked out of the loss (labels
-100). An example also keeps its prompt alone (left-padded: it ends where generation starts) and its target
alone (right-padded), which evaluation appends to the prompt so that one pass gives both the loss and the
prompt's cache for generation (research/loop/prefill.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM

from research.config.speed import Speed
from research.data.collate import IGNORE_INDEX, cut_middle, pad
from research.loop.lm_loss import LMParts, causal_loss, lm_parts
from research.loop.prefill import Pass, prefill, shares_prefill
from research.loop.virtual_tokens import generate_behind_prompt, has_input_prompt
from research.tasks.base import Batch, Features, Tokenizer
from research.tasks.generative import Generative


class Causal(Generative):
    auto_class = AutoModelForCausalLM
    padding_side = "left"
    peft_task_type = "CAUSAL_LM"
    prompt_keys = ("prompt_ids", "prompt_mask")

    def encode(
        self, example: Features, prompt: str, tokenizer: Tokenizer, max_source_length: int, max_target_length: int
    ) -> Features:
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

    def collate(self, features: list[Features], pad_token_id: int) -> dict[str, torch.Tensor]:
        """The labels, and the prompt and target apart (not in a benchmark's workload of model inputs only)."""
        batch = super().collate(features, pad_token_id)
        if "prompt_ids" in features[0]:
            batch["prompt_ids"], batch["prompt_mask"] = pad(
                [f["prompt_ids"] for f in features], pad_token_id, left=True
            )
            targets = [f["input_ids"][len(f["prompt_ids"]) :] for f in features]
            batch["target_ids"], batch["target_mask"] = pad(targets, pad_token_id)
        return batch

    def label_count(self, labels: torch.Tensor) -> int:
        """Position t predicts label t+1: the first label is never predicted."""
        return int(labels[:, 1:].ne(IGNORE_INDEX).sum())

    def lm_parts(self, model: nn.Module, speed: Speed) -> LMParts | None:
        """The decoder and head for the loss at labelled positions only, where it is on and applies."""
        return lm_parts(model) if speed.target_logits else None

    def loss(self, model: nn.Module, batch: Batch, speed: Speed) -> tuple[torch.Tensor, int]:
        if parts := self.lm_parts(model, speed):
            return causal_loss(parts, batch)
        return super().loss(model, batch, speed)

    def one_pass(self, model: nn.Module, batch: Batch, generation: Mapping[str, Any]) -> Pass | None:
        if shares_prefill(generation) and (parts := lm_parts(model)):
            return prefill(parts, batch)
        return None

    def generate_answers(self, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """Behind a soft prompt, at the positions training gave it (research/loop/virtual_tokens.py)."""
        if has_input_prompt(model):
            return generate_behind_prompt(model, ids, mask, **kwargs)
        return super().generate_answers(model, ids, mask, **kwargs)

    def answer(self, output: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        """The model continues its prompt: the prompt is cut off its output."""
        return output[:, prompt.shape[1] :]

    def prompt_ids(self, tokenizer: Tokenizer, prompt: str, limit: int) -> list[int]:
        return cut_middle(tokenizer(prompt, add_special_tokens=False)["input_ids"], limit)

    def passage(
        self, tokenizer: Tokenizer, enc: Batch, labels: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The model reads the passage and predicts each next token; the first has no context, so it is never
        predicted, also not from a soft prompt's last token."""
        labels = labels.clone()
        labels[:, 0] = IGNORE_INDEX
        return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}, labels
