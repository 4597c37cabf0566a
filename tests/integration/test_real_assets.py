"""Real pretrained models on real data, from the offline assets beside the repository
(tests.helpers.ASSETS, see their README): the full pipeline (zero-shot, fit, save, test, run.json) must
actually learn. About two minutes on a 2-core CPU."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from research.pipeline import build, train
from tests.helpers import ASSETS, DIALOGSUM, SMOLLM2, compose_cfg, needs_assets

MINILM = ASSETS / "models" / "all-minilm-l6-v2"
SST2 = ASSETS / "data" / "sst2"
pytestmark = [pytest.mark.integration, needs_assets(SMOLLM2, DIALOGSUM, MINILM, SST2)]


def smollm2(*overrides: str) -> list[str]:
    return [
        "experiment=dialogsum_smollm2",
        f"model.name_or_path={SMOLLM2}",
        f"data.path={DIALOGSUM}",
        "logger=none",
        "~callbacks.model_checkpoint",  # examples.jsonl, no checkpoints
        "trainer.enable_progress_bar=false",
        *overrides,
    ]


def test_smollm2_gguf_loads_with_its_chat_template_and_saves_in_full(tmp_path: Path):
    overrides = smollm2("method=full", "data.train_limit=2", "data.eval_limit=2", "data.test_limit=2")
    module, datamodule = build(compose_cfg(*overrides))
    assert sum(p.numel() for p in module.model.parameters()) == 134_515_008  # the assets README's count
    assert (
        module.method.save(module.model, tmp_path) / "model.safetensors"
    ).is_file()  # de-quantized: plain float weights
    prompt = datamodule.prompt("#Person1#: Hi.\n#Person2#: Hello.", train=False, index=0)
    assert "<|im_start|>user\nSummarize the following conversation." in prompt
    assert prompt.endswith("<|im_start|>assistant\n")


def test_smollm2_gguf_quantizes_to_4bit_for_qlora():
    module, _ = build(compose_cfg(*smollm2("method=qlora", "data.train_limit=2", "data.test_limit=2")))
    base = module.model.get_base_model()
    assert base.is_loaded_in_4bit
    assert module.model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.uint8


def test_smollm2_lora_on_dialogsum_lowers_the_loss_and_generates(tmp_path: Path):
    record = train(
        compose_cfg(
            *smollm2(
                "data.train_limit=16", "data.batch_size=4", "data.test_limit=2", "data.max_source_length=192",
                "method.lr=2e-3", "scheduler.name=constant", "scheduler.warmup_ratio=0",
                "+trainer.limit_val_batches=0", "generation.max_new_tokens=16", f"paths.output_dir={tmp_path}",
            )
        )
    )  # fmt: skip
    assert record.status == "completed"
    assert record.metrics["test/loss"] < record.metrics["zero_shot/loss"] - 0.1, record.metrics
    rows = [json.loads(line) for line in (tmp_path / "examples.jsonl").read_text().splitlines()]
    assert all(r["prediction"].strip() for r in rows if r["stage"] == "test"), rows
    assert (tmp_path / "weights" / "adapter_model.safetensors").is_file()


def test_minilm_learns_sst2_sentiment_in_one_short_epoch(tmp_path: Path):
    record = train(
        compose_cfg(
            "experiment=sst2_minilm", "method=full", "method.lr=3e-4", "trainer.max_epochs=1",
            f"model.name_or_path={MINILM}", f"data.path={SST2}",
            "data.train_limit=512", "data.batch_size=16", "data.test_limit=300", "+trainer.limit_val_batches=0",
            "logger=none", "callbacks=none", "trainer.enable_progress_bar=false", f"paths.output_dir={tmp_path}",
        )
    )  # fmt: skip
    assert record.metrics["test/accuracy"] > 0.65, record.metrics  # chance is ~0.5 on SST-2 dev
