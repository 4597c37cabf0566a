"""Every model x method in conf/ composes (building and training them: test_methods.py, test_peft_methods.py)."""

from __future__ import annotations

import importlib

import pytest
from omegaconf import OmegaConf

from research.config.schema import check_arguments, check_config
from research.models import ModelSpec
from research.runs.record import config_hash
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
        "logger.wandb.entity=my-team",
        "logger.wandb.project=my-project",
        "progress_bar=rich",
    )
    assert (cfg.logger.wandb.entity, cfg.logger.wandb.project) == ("my-team", "my-project")
    assert cfg.method.peft_config.r == 16 and list(cfg.method.peft_config.target_modules) == ["q", "k", "v"]


def test_this_machines_local_settings_reach_wandb_and_change_no_config_hash():
    """conf/local/default.yaml (git-ignored) is an optional default: here its committed example, chosen by name."""
    plain, local = compose_cfg(), compose_cfg("local=example")
    assert plain.logger.wandb.entity is None and local.logger.wandb.entity == "my-team"
    assert config_hash(OmegaConf.to_container(plain)) == config_hash(OmegaConf.to_container(local))


@pytest.mark.parametrize("debug", ["default", "fdr", "overfit", "limit", "profiler"])
def test_every_debug_config_passes_the_checks_with_trainer_arguments(debug: str):
    cfg = compose_cfg(f"debug={debug}")
    check_config(cfg)
    check_arguments(cfg.trainer, "trainer")
    assert cfg.task_name == "debug" and list(cfg.logger) == ["csv"]
