"""Every model x method in conf/ composes (building and training them: test_methods.py, test_peft_methods.py)."""

from __future__ import annotations

import importlib

import pytest
from omegaconf import OmegaConf

from research.models import ModelSpec
from tests.helpers import CONF, compose_cfg

MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml") if not p.stem.startswith("_"))
METHODS = sorted(p.stem for p in (CONF / "method").glob("*.yaml"))


def _import(target: str) -> object:
    module, _, name = target.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("method", METHODS)
def test_every_model_and_method_composes(model: str, method: str):
    cfg = compose_cfg(f"model={model}", f"method={method}")
    assert cfg.method.name == method, "method names in records are the file names in conf/method/"
    assert cfg.model.name == model
    _import(cfg.method._target_)
    ModelSpec(**OmegaConf.to_container(cfg.model, resolve=True))  # validates every model key


def test_overridable_keys_need_no_plus():
    """Every key a user may override is declared, so plain `key=value` works."""
    cfg = compose_cfg(
        "method=lora",
        "method.peft_config.r=16",
        "method.peft_config.target_modules=[q,k,v]",
        "model.dtype=bfloat16",
        "data.train_limit=10",
        "data.path=/tmp/x",
        "model.gguf_file=x.gguf",
        "trainer.max_steps=3",
        "scheduler.warmup_steps=2",
        "generation.max_new_tokens=4",
        "ckpt_path=/tmp/last.ckpt",
    )
    assert cfg.method.peft_config.r == 16 and list(cfg.method.peft_config.target_modules) == ["q", "k", "v"]
