"""What the text-generating tasks share: labels are target tokens (padding left out of the loss), a prediction
is generated text scored by ROUGE and BLEU, and one pass over an evaluation batch's prompt may serve both its
loss and its generation (research/loop/prefill.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from research.data.collate import IGNORE_INDEX, pad
from research.tasks.base import Batch, Features, Rows, Task, Tokenizer

if TYPE_CHECKING:
    from research.config.speed import Speed
    from research.loop.prefill import Pass


class Generative(Task):
    generates = True
    metrics = ("rouge", "bleu")
    prompt_keys: ClassVar[tuple[str, str]]  # the batch's (ids, mask) that generation continues

    def collate(self, features: list[Features], pad_token_id: int) -> dict[str, torch.Tensor]:
        return {"labels": pad([f["labels"] for f in features], IGNORE_INDEX)[0]}

    def label_count(self, labels: torch.Tensor) -> int:
        return int(labels.ne(IGNORE_INDEX).sum())

    def one_pass(self, model: nn.Module, batch: Batch, generation: Mapping[str, Any]) -> Pass | None:
        """The batch's loss, and the prompt's encoding for `generate`, from one pass; None where that does not apply."""
        return None

    def evaluate(
        self, model: nn.Module, batch: Batch, tokenizer: Tokenizer, generation: Mapping[str, Any], speed: Speed
    ) -> Rows:
        shared = self.one_pass(model, batch, generation) if speed.shared_prefill else None
        loss, count, encoded = shared or (*self.loss(model, batch, speed), {})
        inputs = tokenizer.batch_decode(batch[self.prompt_keys[0]], skip_special_tokens=True)
        predictions = self.generate(model, tokenizer, batch, generation, **encoded)
        return Rows(inputs, predictions, batch["references"], loss, count)

    @torch.no_grad()
    def generate(
        self, model: nn.Module, tokenizer: Tokenizer, batch: Batch, generation: Mapping[str, Any], **encoded: Any
    ) -> list[str]:
        """Batched greedy (by default) generation; it stops when every row has produced EOS. `encoded`: the
        prompt already run through the model (`one_pass`), which generation continues from."""
        kwargs = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id}
        kwargs |= {**generation, **encoded}
        ids, mask = (batch[key] for key in self.prompt_keys)
        answers = self.generate_answers(model, ids, mask, **kwargs)
        return [t.strip() for t in tokenizer.batch_decode(answers, skip_special_tokens=True)]

    def generate_answers(self, model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        """The generated tokens that answer each prompt of the batch."""
        return self.answer(model.generate(input_ids=ids, attention_mask=mask, **kwargs), ids)

    def answer(self, output: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        """The generated tokens that answer `prompt`: an encoder-decoder's output is the answer alone."""
        return output

    def prompt_ids(self, tokenizer: Tokenizer, prompt: str, limit: int) -> list[int]:
        """A prompt's tokens, cut to `limit` as evaluation cuts them."""
        return tokenizer(prompt, truncation=True, max_length=limit)["input_ids"]

    def prompt_inputs(self, tokenizer: Tokenizer, prompts: list[str], limit: int) -> dict[str, torch.Tensor]:
        """Bare prompts as an evaluation batch holds them for `generate` (infer answers them so)."""
        ids = [self.prompt_ids(tokenizer, p, limit) for p in prompts]
        padded = pad(ids, tokenizer.pad_token_id, left=self.padding_side == "left")
        return dict(zip(self.prompt_keys, padded, strict=True))

    def passage(
        self, tokenizer: Tokenizer, enc: Batch, labels: torch.Tensor
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """A plain passage (`enc`, tokenized; `labels`: its tokens, padding ignored) as this task's language
        model scores it: the model inputs and the labels their loss is over (research/analyses/forgetting.py)."""
        raise NotImplementedError
