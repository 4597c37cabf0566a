"""Fast-path options of conf/model/*.yaml: gradient checkpointing and torch.compile change how a step
is computed, never what it computes."""

from __future__ import annotations

import pytest
import torch

from research.pipeline import build
from tests.helpers import compose_cfg, small


def _lora_step(*overrides: str) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
    """Loss, LoRA gradients and the number of query-projection forward calls of one training step on a
    fixed batch (transformers checkpoints a block's `forward`, so hooks inside the block see the recompute)."""
    torch.manual_seed(0)
    module, datamodule = build(compose_cfg(*small("method=lora", *overrides)))
    batch = next(iter(datamodule.loader("train", 4)))
    calls = []
    for name, layer in module.model.named_modules():
        if name.endswith((".q", ".q_proj")):
            layer.register_forward_hook(lambda *_: calls.append(1))
    module.model.train()
    torch.manual_seed(1)  # LoRA dropout draws the same masks in both runs
    loss = module(batch).loss
    loss.backward()
    grads = {n: p.grad.clone() for n, p in module.model.named_parameters() if p.requires_grad}
    return loss.detach(), grads, len(calls)


@pytest.mark.parametrize("model", ["tiny_t5", "tiny_llama"])
def test_gradient_checkpointing_recomputes_and_gives_the_same_lora_gradients(model: str) -> None:
    loss, grads, calls = _lora_step(f"model={model}")
    loss_gc, grads_gc, calls_gc = _lora_step(f"model={model}", "model.gradient_checkpointing=true")
    assert calls > 0 and calls_gc == 2 * calls  # every block ran again in the backward pass: checkpointing is on
    torch.testing.assert_close(loss_gc, loss, rtol=0, atol=1e-6)
    assert grads_gc.keys() == grads.keys() and any("lora_A" in n for n in grads)
    for name, grad in grads.items():
        assert grads_gc[name].abs().sum() > 0 or grad.abs().sum() == 0, f"{name}: no gradient under checkpointing"
        torch.testing.assert_close(grads_gc[name], grad, rtol=1e-5, atol=1e-7, msg=name)


def test_gradient_checkpointing_on_an_unsupported_model_fails_naming_the_field() -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    from research.models.loading import apply_fast_path

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=32))
    model.supports_gradient_checkpointing = False
    with pytest.raises(ValueError, match="model.gradient_checkpointing=true"):
        apply_fast_path(model, gradient_checkpointing=True, compile=False)


@pytest.mark.slow
def test_compiled_blocks_give_the_same_loss_and_train() -> None:
    """Regional torch.compile (inductor, CPU): same loss and gradients as eager within float32 noise,
    parameter names unchanged (saved weights stay loadable)."""
    loss, grads, _ = _lora_step("model=tiny_llama", "method.peft_config.lora_dropout=0")
    loss_c, grads_c, _ = _lora_step("model=tiny_llama", "method.peft_config.lora_dropout=0", "model.compile=true")
    torch.testing.assert_close(loss_c, loss, rtol=1e-5, atol=1e-5)
    assert grads_c.keys() == grads.keys()
    for name, grad in grads.items():
        torch.testing.assert_close(grads_c[name], grad, rtol=1e-4, atol=1e-6, msg=name)
