"""Exact trainable counts at real scale: google/flan-t5-base built from conf/model/flan_t5_base.yaml
with random weights (on the meta device: no memory, no download)."""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from research.methods.base import Context, count_parameters
from research.models import ModelSpec, build_model
from research.models.tokenizers import byte_tokenizer
from tests.helpers import compose_cfg

FLAN_T5_BASE_PARAMS = 247_577_856  # published size of google/flan-t5-base (untied lm_head)


def build_flan_t5_base(method: str, *overrides: str):
    cfg = compose_cfg("model=flan_t5_base", "model.pretrained=false", f"method={method}", *overrides)
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    tokenizer = byte_tokenizer()  # the count does not depend on the tokenizer
    with torch.device("meta"):
        backbone = build_model(spec, tokenizer)
        assert count_parameters(backbone)["total"] == FLAN_T5_BASE_PARAMS
        model = instantiate(cfg.method).inject(backbone, Context(spec.task, tokenizer))
    return count_parameters(model)


def test_flan_t5_base_lora_r32_counts():
    counts = build_flan_t5_base("lora", "method.peft_config.r=32", "method.peft_config.lora_alpha=32")
    assert counts["trainable"] == 3_538_944
    assert counts["total"] == 251_116_800
    assert round(counts["trainable_pct"], 2) == 1.41


def test_flan_t5_base_prompt_tuning_counts():
    counts = build_flan_t5_base("prompt_tuning", "method.peft_config.num_virtual_tokens=20", "method.init_text=null")
    assert counts["trainable"] == 30_720  # 20 tokens x 768 x 2 (peft gives encoder and decoder a prompt each)


@pytest.mark.parametrize("size", ["small", "large", "xl"])
def test_other_flan_t5_sizes_build_offline(size: str):
    cfg = compose_cfg(f"model=flan_t5_{size}", "model.pretrained=false")
    spec = ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))
    expected = {"small": 76_961_152, "large": 783_150_080, "xl": 2_849_757_184}[size]
    with torch.device("meta"):
        assert count_parameters(build_model(spec, byte_tokenizer()))["total"] == expected
