"""QLoRA on CPU with real bitsandbytes: the base is NF4 4-bit and stays bit-identical while the LoRA
factors train and the loss falls; 4-bit weights count as 2 parameters per stored byte; run.json records
the model's bytes as loaded beside the same parameters in float32 and bfloat16."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from research.loop.optim import check_optimizer
from research.methods.base import count_parameters
from research.pipeline import build, train
from tests.helpers import compose_cfg, fit_on_one_batch, loss_on, small

# tiny_llama: 2 layers x (q, k, v, o: 128x128; gate, up, down: 128x256) in 4-bit; embeddings, norms in float32
LINEAR = 2 * (4 * 128 * 128 + 3 * 128 * 256)
FLOAT = 2 * 259 * 128 + 2 * 2 * 128 + 128
LORA = 2 * 2 * 8 * (128 + 128)


def test_qlora_trains_lora_on_a_frozen_4bit_base():
    cfg = compose_cfg(*small("model=tiny_llama", "method=qlora", "scheduler.warmup_ratio=0"))
    module, datamodule = build(cfg)
    packed = {n: p.detach().clone() for n, p in module.model.named_parameters() if p.dtype == torch.uint8}
    assert len(packed) == 14 and all(
        hasattr(p, "quant_state") for n, p in module.model.named_parameters() if n in packed
    )
    assert count_parameters(module.model) | {"trainable_pct": 0} == {
        "trainable": LORA,
        "total": LINEAR + FLOAT + LORA,
        "trainable_pct": 0,
    }

    batch = next(iter(datamodule.train_dataloader()))
    before = loss_on(module, batch)
    fit_on_one_batch(module, batch, steps=10)
    assert loss_on(module, batch) < before
    after = dict(module.model.named_parameters())
    assert all(after[n].dtype == torch.uint8 and torch.equal(after[n], p) for n, p in packed.items())


def test_gradient_checkpointing_survives_the_4bit_reload():
    module, _ = build(compose_cfg(*small("model=tiny_llama", "method=qlora", "model.gradient_checkpointing=true")))
    assert module.model.get_base_model().is_activation_checkpointing


def test_qlora_fails_fast_on_a_bad_field():
    with pytest.raises(ValueError, match="method.quantization.quant_type"):
        build(compose_cfg(*small("model=tiny_llama", "method=qlora", "method.quantization.quant_type=int3")))
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="method.quantization.compute_dtype=float16 needs a GPU"):
            build(compose_cfg(*small("model=tiny_llama", "method=qlora", "method.quantization.compute_dtype=float16")))


def test_qlora_trains_with_the_8bit_optimizer_and_refuses_paged_on_cpu():
    cfg = compose_cfg(
        *small(
            "model=tiny_llama",
            "method=qlora",
            "scheduler.warmup_ratio=0",
            "optimizer._target_=bitsandbytes.optim.AdamW8bit",
        )
    )
    module, datamodule = build(cfg)
    batch = next(iter(datamodule.train_dataloader()))
    before = loss_on(module, batch)
    fit_on_one_batch(module, batch, steps=10)
    assert type(module.trainer.optimizers[0]).__name__ == "AdamW8bit"
    assert loss_on(module, batch) < before
    paged = instantiate({"_target_": "bitsandbytes.optim.PagedAdamW8bit", "_partial_": True})
    with pytest.raises(ValueError, match="optimizer._target_=PagedAdamW8bit needs a GPU"):
        check_optimizer(paged, cuda=False)


@pytest.mark.parametrize("method", ["qlora", "lora"])
def test_run_json_records_model_bytes_as_loaded_and_in_float32_and_bfloat16(tmp_path, method: str):
    record = train(
        compose_cfg(
            *small("model=tiny_llama", f"method={method}", "logger=none", "callbacks=none"),
            "train=false",
            "test=false",
            f"paths.output_dir={tmp_path}",
        )
    )
    params = LINEAR + FLOAT + LORA
    mem = record.memory
    assert (mem["model_bytes_float32"], mem["model_bytes_bfloat16"]) == (4 * params, 2 * params)
    if method == "lora":
        assert mem["model_bytes"] == mem["model_bytes_float32"]  # nothing quantized: the float32 size exactly
        return
    # 4-bit: half a byte per linear weight; float32 embeddings, norms and LoRA; and bitsandbytes' states:
    # a uint8 scale per 64-weight block, and per layer the 16-entry NF4 code book, the double-quantized
    # scales' 256-entry code book, their float32 scales (one per 256 blocks) and an offset
    blocks = LINEAR // 64
    states = blocks + 14 * (16 + 256 + 1) * 4 + (8 * 1 + 6 * 2) * 4
    assert mem["model_bytes"] == LINEAR // 2 + 4 * (FLOAT + LORA) + states
    assert mem["model_bytes"] / mem["model_bytes_float32"] < 0.31  # 484,872 / 1,611,264 = 0.301
    assert mem["model_bytes"] < mem["model_bytes_bfloat16"]
