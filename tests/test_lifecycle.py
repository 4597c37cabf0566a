"""The weight lifecycle each method owns, on a tiny Llama with real peft: save -> load onto a fresh base
gives identical logits; merging LoRA agrees with the unmerged model within atol 1e-5 in float32; the merged
export loads with plain transformers (and its tokenizer); a Lightning checkpoint holds only the trainable
tensors and resumes. The same for our bottleneck adapters (save/load; merging is refused) and for QLoRA
(load onto a fresh 4-bit base; merge into the de-quantized base, exported as a plain float32 model)."""

from __future__ import annotations

from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from peft import PrefixTuningConfig, get_peft_model
from torch.utils.data import DataLoader
from transformers import AutoModelForCausalLM, DistilBertConfig, DistilBertForSequenceClassification

from research.methods.base import MergeRefused
from research.methods.peft import expose_past_key_values
from research.methods.quantization import is_4bit
from research.pipeline import build
from tests.helpers import LORA_OVERRIDES, compose_cfg, fit_on_one_batch, load_fresh, logits, plain_base, small


def trained_module(tmp_path: Path, overrides: list[str] = LORA_OVERRIDES) -> tuple[pl.LightningModule, dict, Path]:
    module, datamodule = build(compose_cfg(*overrides))
    batch = next(iter(datamodule.train_dataloader()))
    fit_on_one_batch(module, batch, steps=5)
    return module.eval(), batch, module.method.save(module.model, tmp_path / "weights")


def test_save_load_merge_export(tmp_path: Path):
    module, batch, weights = trained_module(tmp_path)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in weights.iterdir()}
    trained = logits(module.model, batch)

    loaded = load_fresh(module, weights)
    assert torch.equal(logits(loaded, batch), trained)

    module.method.export(loaded, module.tokenizer, tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    assert not any("lora" in n for n in plain.state_dict())
    assert (tmp_path / "merged" / "tokenizer_config.json").is_file()
    merged = logits(plain, batch)
    assert trained.dtype == torch.float32 and not torch.equal(merged, logits(plain_base().eval(), batch))
    torch.testing.assert_close(merged, trained, atol=1e-5, rtol=0)


def test_checkpoint_holds_only_trainable_tensors_and_resumes(tmp_path: Path):
    module, datamodule = build(compose_cfg(*LORA_OVERRIDES))
    batch = next(iter(datamodule.train_dataloader()))
    fit_on_one_batch(module, batch, steps=2)
    trainer = pl.Trainer(
        max_steps=2, accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path
    )
    trainer.fit(module, train_dataloaders=DataLoader([batch] * 2, batch_size=None))
    ckpt = tmp_path / "last.ckpt"
    trainer.save_checkpoint(ckpt)
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    trainable = {f"model.{n}" for n, p in module.model.named_parameters() if p.requires_grad}
    assert set(state) == trainable
    base_bytes = sum(p.numel() * p.element_size() for p in module.model.get_base_model().parameters())
    assert ckpt.stat().st_size < base_bytes / 4

    resumed, _ = build(compose_cfg(*LORA_OVERRIDES))
    again = pl.Trainer(
        max_steps=4, accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False
    )
    again.fit(resumed, train_dataloaders=DataLoader([batch] * 4, batch_size=None), ckpt_path=ckpt)
    assert again.global_step == 4


def test_bottleneck_adapter_save_load_reproduces_outputs_and_merge_is_refused(tmp_path: Path):
    module, batch, weights = trained_module(
        tmp_path, small("model=tiny_llama", "method=adapter", "scheduler.warmup_ratio=0")
    )
    assert {p.name for p in weights.iterdir()} == {"adapter.safetensors", "adapter_config.json"}
    out = logits(module.model, batch)
    assert not torch.equal(out, logits(plain_base().eval(), batch))  # the adapters did train

    loaded = load_fresh(module, weights, small("model=tiny_llama", "method=adapter"))
    assert torch.equal(logits(loaded, batch), out)
    assert not any(p.requires_grad for p in loaded.parameters()) and not loaded.training
    with pytest.raises(MergeRefused, match="no weight matrix can absorb"):
        module.method.merge(loaded)


def test_prompt_tuning_merge_is_refused_by_name():
    module, _ = build(compose_cfg(*small("model=tiny_llama", "method=prompt_tuning")))
    with pytest.raises(MergeRefused, match="method 'prompt_tuning' learns virtual tokens"):
        module.method.merge(module.model)


def test_qlora_save_load_and_merge_into_the_dequantized_base(tmp_path: Path):
    overrides = small(
        "model=tiny_llama", "method=qlora", "scheduler.warmup_ratio=0", "method.peft_config.lora_dropout=0"
    )
    module, batch, weights = trained_module(tmp_path, overrides)
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in weights.iterdir()}
    out = logits(module.model, batch)

    loaded = load_fresh(module, weights, overrides)
    assert is_4bit(loaded.get_base_model())
    assert torch.equal(logits(loaded, batch), out)

    module.method.export(loaded, module.tokenizer, tmp_path / "merged")
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "merged", dtype=torch.float32).eval()
    assert not any("lora" in n for n in plain.state_dict()) and not is_4bit(plain)
    assert all(p.dtype == torch.float32 for p in plain.parameters())
    torch.testing.assert_close(logits(plain, batch), out, atol=1e-5, rtol=0)


def test_prefix_tuned_classifier_uses_its_prefix_and_reloads_it(tmp_path: Path, sst2: Path):
    """Prefix tuning of a BERT classifier (its encoder takes the prefix as `cache` since transformers 5):
    the prefix changes the logits, and the saved prefix loaded onto a fresh base gives identical logits."""
    overrides = small("model=tiny_bert", "data=sst2", f"data.path={sst2}", "method=prefix_tuning")
    module, batch, weights = trained_module(tmp_path, overrides)
    prefix = module.model.prompt_encoder[module.model.active_adapter].embedding.weight
    trained = logits(module.model, batch)
    with torch.no_grad():
        kept = prefix.clone()
        prefix.add_(1.0)
        assert not torch.allclose(logits(module.model, batch), trained, atol=1e-4), "the prefix is ignored"
        prefix.copy_(kept)
    loaded = load_fresh(module, weights, overrides)
    torch.testing.assert_close(logits(loaded, batch), logits(module.model, batch), rtol=0, atol=0)


def test_prefix_tuning_on_an_encoder_without_past_keys_is_refused_when_applied():
    model = DistilBertForSequenceClassification(
        DistilBertConfig(vocab_size=64, dim=32, n_layers=1, n_heads=2, hidden_dim=64)
    )
    peft_model = get_peft_model(
        model,
        PrefixTuningConfig(
            task_type="SEQ_CLS", num_virtual_tokens=4, token_dim=32, num_attention_heads=2, num_layers=1
        ),
    )
    with pytest.raises(ValueError, match="DistilBertModel takes no past keys and values.*use prompt_tuning"):
        expose_past_key_values(peft_model)
