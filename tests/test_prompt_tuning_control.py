"""Prompt tuning of a decoder-only model by the framework against a plain PyTorch + peft loop on the same
batches: the same loss at every step, and the same generated answers.

The plain loop imports nothing from `research`: peft's `PromptTuningConfig` on a copy of the same base
(without activation checkpointing, which the framework's run has on), the prompt initialised from the
init text's embeddings, AdamW with the run's settings, the warm-up schedule and clipping, peft's own
forward for the loss (it gives the virtual tokens -100 labels), and generation one prompt at a time without
padding: the layout training had. The framework generates for left-padded batches; before the fix, peft
counted positions through the padding there, and a trained soft prompt answered differently in every
padded row.
"""

from __future__ import annotations

import copy
import math

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from peft import PeftModel, PromptTuningConfig, get_peft_model
from torch import nn
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup

from research.pipeline import build
from tests.helpers import compose_cfg, small

STEPS, WARMUP, VIRTUAL, NEW_TOKENS = 8, 2, 20, 10
OVERRIDES = small(
    "model=tiny_llama",
    "+model.config.initializer_range=0.2",  # varied answers (the default init answers one letter)
    "model.gradient_checkpointing=true",  # as experiment=dialogsum_smollm2 has it
    "method=prompt_tuning",
    "method.lr=0.1",
    f"method.peft_config.num_virtual_tokens={VIRTUAL}",
    f"scheduler.warmup_steps={WARMUP}",
    f"trainer.max_steps={STEPS}",
    "data.batch_size=4",
    "data.test_limit=8",
    "data.eval_batch_size=4",
    f"generation.max_new_tokens={NEW_TOKENS}",
    "logger=none",
    "callbacks=none",
)
MODEL_INPUTS = ("input_ids", "attention_mask", "labels")


class Batches(pl.Callback):
    """Each training batch the framework stepped on, and its loss."""

    def __init__(self) -> None:
        self.batches: list[dict[str, torch.Tensor]] = []
        self.losses: list[float] = []

    def on_train_batch_end(self, trainer: pl.Trainer, module: pl.LightningModule, outputs, batch, batch_idx) -> None:
        self.batches.append({k: batch[k].clone() for k in MODEL_INPUTS})
        self.losses.append(float(outputs["loss"]))


def plain_prompt_tuning(
    base: nn.Module, tokenizer: PreTrainedTokenizerBase, init_text: str, lr: float, batches: list[dict]
) -> tuple[PeftModel, list[float]]:
    """Prompt tuning as a user writes it with peft and PyTorch alone; returns the model and each step's loss."""
    model = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=VIRTUAL))
    ids = tokenizer(init_text, add_special_tokens=False)["input_ids"]
    ids = (ids * math.ceil(VIRTUAL / len(ids)))[:VIRTUAL]
    with torch.no_grad():
        model.prompt_encoder["default"].embedding.weight.copy_(model.get_input_embeddings()(torch.tensor(ids)))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    schedule = get_linear_schedule_with_warmup(optimizer, WARMUP, len(batches))
    model.train()
    losses = []
    for batch in batches:
        loss = model(**{k: batch[k] for k in MODEL_INPUTS}).loss
        loss.backward()
        nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    return model.eval(), losses


@torch.no_grad()
def answer_one_at_a_time(model: PeftModel, tokenizer: PreTrainedTokenizerBase, prompts: list[list[int]]) -> list[str]:
    """Greedy answers, each prompt alone (no padding)."""
    answers = []
    for prompt in prompts:
        ids = torch.tensor([prompt])
        out = model.generate(
            input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=NEW_TOKENS, do_sample=False,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )  # fmt: skip
        answers.append(tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip())
    return answers


def test_prompt_tuning_matches_a_plain_peft_loop_in_loss_and_generations() -> None:
    cfg = compose_cfg(*OVERRIDES)
    module, datamodule = build(cfg)
    base = copy.deepcopy(module.model.get_base_model())
    base.activation_checkpointing_disable()
    recorder = Batches()
    trainer = instantiate(
        cfg.trainer, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[recorder]
    )  # the run's own trainer settings: gradient clipping at 1.0, max_steps
    trainer.fit(module, datamodule=datamodule)
    trainer.test(module, datamodule=datamodule, verbose=False)

    plain, losses = plain_prompt_tuning(base, module.tokenizer, cfg.method.init_text, cfg.method.lr, recorder.batches)
    # float32 on one thread: the two loops agree to rounding (1e-5 relative); the loss fell.
    assert len(recorder.losses) == STEPS
    torch.testing.assert_close(torch.tensor(recorder.losses), torch.tensor(losses), rtol=1e-5, atol=1e-6)
    assert losses[-1] < losses[0] - 0.5

    prompts = datamodule.splits["test"]["prompt_ids"]
    lengths = sorted(len(p) for p in prompts)
    assert len(set(lengths[:4])) > 1 and len(set(lengths[4:])) > 1  # each test batch of 4 has padded rows
    expected = answer_one_at_a_time(plain, module.tokenizer, prompts)
    assert module.last_eval["predictions"] == expected
    assert len(set(expected)) > 2, expected  # varied answers: a real comparison
